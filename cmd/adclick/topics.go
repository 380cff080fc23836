package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adclick/adclick/io/kafkatopics"
)

// minRawRetention is the shortest raw-topic retention accepted: a restarted
// streaming job re-reads every open window from its first record, up to the
// longest top-N window (60 min) plus the allowed lateness (5 min) back, and
// a shorter retention could delete what it must re-read.
const minRawRetention = 2 * time.Hour

// runTopics creates the raw, results and dead-letter topics, or verifies
// existing ones. It is `adclick topics` rather than `adclick migrate --kafka`:
// migrate is the Cassandra schema and takes Cassandra's flags; the topics
// take the Kafka flags stream, logwatcher and dbwriter already share, under
// the same names and defaults.
func runTopics(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "topics")
	var t topics
	t.register(fs)
	partitions := fs.Int("partitions", 4, "partitions of each topic to create, and the least an existing one may have: the most stream readers and DB writers that share a topic")
	rf := fs.Int("replication-factor", -1, "replication factor of topics to create (-1: the broker's default); when positive, also the least an existing one may have")
	rawRet := fs.Duration("raw-retention", 7*24*time.Hour, "least retention of the raw topic (retention.ms): how long the streaming job and the raw DB writer may be down, or re-read, without losing clicks")
	resRet := fs.Duration("results-retention", 7*24*time.Hour, "least retention of the results topic: how long the results DB writer may be down")
	deadRet := fs.Duration("dead-letter-retention", 7*24*time.Hour, "least retention of the dead-letter topic")
	verifyOnly := fs.Bool("verify-only", false, "create nothing: check that the topics exist with the needed settings")
	timeout := fs.Duration("timeout", time.Minute, "give up after this long")
	if err := parseFlags(fs, env, args); err != nil {
		return err
	}
	brokers, err := t.brokerList()
	if err != nil {
		return err
	}
	if *partitions < 1 || *partitions > 10000 {
		return fmt.Errorf("%w: --partitions %d must be 1..10000", errUsage, *partitions)
	}
	if *rf == 0 || *rf < -1 || *rf > 32767 {
		return fmt.Errorf("%w: --replication-factor %d must be positive or -1", errUsage, *rf)
	}
	if *rawRet < minRawRetention {
		return fmt.Errorf("%w: --raw-retention %v is under %v: a restarted streaming job re-reads up to the longest window plus the allowed lateness", errUsage, *rawRet, minRawRetention)
	}
	for name, d := range map[string]time.Duration{"results-retention": *resRet, "dead-letter-retention": *deadRet} {
		if d < time.Hour {
			return fmt.Errorf("%w: --%s %v must be at least 1h", errUsage, name, d)
		}
	}
	if *timeout <= 0 {
		return fmt.Errorf("%w: --timeout must be positive", errUsage)
	}
	specs := []kafkatopics.Topic{
		// Raw clicks, keyed by ad_id. CreateTime keeps the click's event
		// time, which the log watcher stamps, as the record timestamp (the
		// streaming job's watermark reads it); LogAppendTime would replace
		// it with the broker's clock. Time-based deletion then works on
		// event time: see the README on backfilling old logs.
		{Name: t.raw, Partitions: int32(*partitions), ReplicationFactor: int16(*rf), CleanupPolicy: "delete",
			Retention: *rawRet, TimestampType: "CreateTime", UnlimitedBytes: true},
		// Results are written keyed by what they overwrite, yet not
		// compacted: compaction keeps only the newest record of a key, and
		// the newest is not always the largest. A restarted job re-reads
		// its open windows and emits early panes counted from part of
		// their data after the full pane it wrote before the crash (for
		// good, if it stops again before catching up). The DB writer's
		// merge keeps the larger value only if it reads both; a writer
		// reading a compacted topic from the start (a new store, a reset
		// group) could store the lower one.
		{Name: t.results, Partitions: int32(*partitions), ReplicationFactor: int16(*rf), CleanupPolicy: "delete",
			Retention: *resRet, UnlimitedBytes: true},
		{Name: t.dead, Partitions: int32(*partitions), ReplicationFactor: int16(*rf), CleanupPolicy: "delete",
			Retention: *deadRet},
	}
	if t.raw == t.results || t.raw == t.dead || t.results == t.dead {
		return fmt.Errorf("%w: the raw, results and dead-letter topics must be three different topics", errUsage)
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	reports, err := kafkatopics.Ensure(ctx, kadm.NewClient(cl), specs, *verifyOnly)
	if err != nil {
		return fmt.Errorf("topics on %s: %w", t.brokers, err)
	}
	var wrong, missing []string
	changed := false
	for _, r := range reports {
		switch r.Outcome {
		case kafkatopics.Created:
			changed = true
			fmt.Fprintf(env.stdout, "%s: created (%s)\n", r.Topic.Name, r.Topic.Describe())
		case kafkatopics.Unchanged:
			fmt.Fprintf(env.stdout, "%s: exists with the needed settings (%s)\n", r.Topic.Name, r.Topic.Describe())
		case kafkatopics.Missing:
			missing = append(missing, r.Topic.Name)
			fmt.Fprintf(env.stdout, "%s: MISSING (needs %s)\n", r.Topic.Name, r.Topic.Describe())
		case kafkatopics.Wrong:
			wrong = append(wrong, r.Topic.Name)
			fmt.Fprintf(env.stdout, "%s: WRONG, left unchanged:\n", r.Topic.Name)
			for _, p := range r.Problems {
				fmt.Fprintf(env.stdout, "    %s\n", p)
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
		fmt.Fprintln(env.stdout, "nothing changed: every topic already had the needed settings")
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
