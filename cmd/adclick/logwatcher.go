package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/adclick/adclick/services/logwatch"
)

func runLogwatcher(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "logwatcher")
	files := fs.String("files", "", "comma-separated globs of the click log files to tail (required)")
	// The same flag names and defaults as stream and allinone, so that the
	// commands run with defaults meet on one topic. --brokers and --topic
	// were this command's names before; they stay as aliases.
	var t topics
	t.registerRaw(fs)
	fs.StringVar(&t.brokers, "brokers", t.brokers, "alias of --kafka-brokers (deprecated)")
	fs.StringVar(&t.raw, "topic", t.raw, "alias of --raw-topic (deprecated)")
	state := fs.String("state", "", "JSON file that keeps the acknowledged file positions (required)")
	poll := fs.Duration("poll-interval", logwatch.DefaultPollInterval, "how often idle files and the globs are checked")
	commit := fs.Duration("commit-interval", logwatch.DefaultCommitInterval, "how often acknowledged positions are persisted")
	inflight := fs.Int("max-in-flight", logwatch.DefaultMaxInFlight, "records sent but not acknowledged before reading pauses")
	inflightBytes := fs.Int64("max-in-flight-bytes", logwatch.DefaultMaxInFlightBytes, "bytes sent but not acknowledged before reading pauses")
	drain := fs.Duration("drain-timeout", logwatch.DefaultDrainTimeout, "on shutdown, how long to wait for the broker's acknowledgements")
	hot := fs.String("salt-hot-ads", "", "comma-separated hot ad_ids whose Kafka key is salted (ad_id#bucket) to spread them over partitions")
	buckets := fs.Int("salt-buckets", 0, "number of salt buckets for --salt-hot-ads (≥ 2)")
	var mf metricsFlags
	mf.register(fs)
	if err := parseFlags(fs, env, args); err != nil {
		return err
	}
	if strings.TrimSpace(*files) == "" {
		return fmt.Errorf("%w: --files is required (e.g. --files '/var/log/ads/clicks*.log')", errUsage)
	}
	if *state == "" {
		return fmt.Errorf("%w: --state is required (where acknowledged positions are kept)", errUsage)
	}
	conn, err := t.connection(env)
	if err != nil {
		return err
	}
	if err := conn.probe(ctx, env, true); err != nil {
		return err
	}
	reg := newRegistry()
	w, err := logwatch.New(logwatch.Config{
		Globs:            splitList(*files),
		Brokers:          conn.brokers,
		Security:         conn.sec,
		Topic:            t.raw,
		StatePath:        *state,
		PollInterval:     *poll,
		CommitInterval:   *commit,
		MaxInFlight:      *inflight,
		MaxInFlightBytes: *inflightBytes,
		DrainTimeout:     *drain,
		SaltHotAds:       splitList(*hot),
		SaltBuckets:      *buckets,
		Logger:           env.log,
		Registerer:       reg,
	})
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	stop, err := mf.serve(env, reg)
	if err != nil {
		return err
	}
	defer stop()
	return w.Run(ctx)
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
