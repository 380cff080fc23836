package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adclick/adclick/io/kafkatopics"
)

// runTopics creates the raw, results and dead-letter topics, or verifies
// existing ones. It is `adclick topics` rather than `adclick migrate --kafka`:
// migrate is the Cassandra schema and takes Cassandra's flags; the topics
// take the Kafka flags stream, logwatcher and dbwriter already share, under
// the same names and defaults.
func runTopics(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "topics")
	var o topicsOptions
	o.register(fs)
	if err := parseFlags(fs, env, args); err != nil {
		return err
	}
	conn, err := o.validate(env)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if err := conn.probe(ctx, env, false); err != nil {
		return err
	}
	opts, err := conn.opts()
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	reports, err := kafkatopics.Ensure(ctx, kadm.NewClient(cl), o.set().Topics(), o.verifyOnly)
	if err != nil {
		return fmt.Errorf("topics on %s: %w", o.t.brokers, err)
	}
	return printTopicReports(env.stdout, reports)
}

// topicsOptions are the flags of adclick topics.
type topicsOptions struct {
	t                                    topics
	partitions, replicationFactor        int
	rawRet, resultsRet, deadRet, timeout time.Duration
	verifyOnly                           bool
}

func (o *topicsOptions) register(fs *flag.FlagSet) {
	o.t.register(fs)
	fs.IntVar(&o.partitions, "partitions", 4, "partitions of each topic to create, and the least an existing one may have: the most stream readers and DB writers that share a topic")
	fs.IntVar(&o.replicationFactor, "replication-factor", -1, "replication factor of topics to create (-1: the broker's default); when positive, also the least an existing one may have")
	fs.DurationVar(&o.rawRet, "raw-retention", 7*24*time.Hour, "least retention of the raw topic (retention.ms): how long the streaming job and the raw DB writer may be down, or re-read, without losing clicks")
	fs.DurationVar(&o.resultsRet, "results-retention", 7*24*time.Hour, "least retention of the results topic: how long the results DB writer may be down")
	fs.DurationVar(&o.deadRet, "dead-letter-retention", 7*24*time.Hour, "least retention of the dead-letter topic")
	fs.BoolVar(&o.verifyOnly, "verify-only", false, "create nothing: check that the topics exist with the needed settings")
	fs.DurationVar(&o.timeout, "timeout", time.Minute, "give up after this long")
}

// validate checks the flags and returns the connection to the brokers.
func (o *topicsOptions) validate(env *cliEnv) (kafkaConn, error) {
	conn, err := o.t.connection(env)
	if err != nil {
		return kafkaConn{}, err
	}
	if o.partitions < 1 || o.partitions > 10000 {
		return kafkaConn{}, fmt.Errorf("%w: --partitions %d must be 1..10000", errUsage, o.partitions)
	}
	if rf := o.replicationFactor; rf == 0 || rf < -1 || rf > 32767 {
		return kafkaConn{}, fmt.Errorf("%w: --replication-factor %d must be positive or -1", errUsage, rf)
	}
	if o.rawRet < kafkatopics.MinRawRetention {
		return kafkaConn{}, fmt.Errorf("%w: --raw-retention %v is under %v: a restarted streaming job re-reads up to the longest window plus the allowed lateness", errUsage, o.rawRet, kafkatopics.MinRawRetention)
	}
	for name, d := range map[string]time.Duration{"results-retention": o.resultsRet, "dead-letter-retention": o.deadRet} {
		if d < time.Hour {
			return kafkaConn{}, fmt.Errorf("%w: --%s %v must be at least 1h", errUsage, name, d)
		}
	}
	if o.timeout <= 0 {
		return kafkaConn{}, fmt.Errorf("%w: --timeout must be positive", errUsage)
	}
	if o.t.raw == o.t.results || o.t.raw == o.t.dead || o.t.results == o.t.dead {
		return kafkaConn{}, fmt.Errorf("%w: the raw, results and dead-letter topics must be three different topics", errUsage)
	}
	return conn, nil
}

// set is the topics the flags name, as validate accepted them.
func (o *topicsOptions) set() kafkatopics.Set {
	return kafkatopics.Set{
		Raw: o.t.raw, Results: o.t.results, DeadLetters: o.t.dead,
		Partitions: int32(o.partitions), ReplicationFactor: int16(o.replicationFactor),
		RawRetention: o.rawRet, ResultsRetention: o.resultsRet, DeadLetterRetention: o.deadRet,
	}
}

// printTopicReports writes one line per topic (and each problem of a wrong
// one). The error names the wrong and the missing topics.
func printTopicReports(w io.Writer, reports []kafkatopics.Report) error {
	var wrong, missing []string
	changed := false
	for _, r := range reports {
		switch r.Outcome {
		case kafkatopics.Created:
			changed = true
			fmt.Fprintf(w, "%s: created (%s)\n", r.Topic.Name, r.Topic.Describe())
		case kafkatopics.Unchanged:
			fmt.Fprintf(w, "%s: exists with the needed settings (%s)\n", r.Topic.Name, r.Topic.Describe())
		case kafkatopics.Missing:
			missing = append(missing, r.Topic.Name)
			fmt.Fprintf(w, "%s: MISSING (needs %s)\n", r.Topic.Name, r.Topic.Describe())
		case kafkatopics.Wrong:
			wrong = append(wrong, r.Topic.Name)
			fmt.Fprintf(w, "%s: WRONG, left unchanged:\n", r.Topic.Name)
			for _, p := range r.Problems {
				fmt.Fprintf(w, "    %s\n", p)
			}
		}
	}
	var errs []error
	if len(wrong) > 0 {
		errs = append(errs, fmt.Errorf("wrong settings in %s: %w", joinAnd(wrong), errWrongTopics))
	}
	if len(missing) > 0 {
		errs = append(errs, fmt.Errorf("missing %s: run without --verify-only to create them", joinAnd(missing)))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if !changed {
		fmt.Fprintln(w, "nothing changed: every topic already had the needed settings")
	}
	return nil
}

// errWrongTopics says what to do about topics the command would not touch.
var errWrongTopics = errors.New("adclick topics changes no existing topic: fix the settings listed above with Kafka's own tools (kafka-configs --alter, kafka-topics --alter --partitions), or point adclick at other topics")

func joinAnd(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	out := s[0]
	for _, x := range s[1 : len(s)-1] {
		out += ", " + x
	}
	return out + " and " + s[len(s)-1]
}
