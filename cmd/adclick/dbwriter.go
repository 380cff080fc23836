package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/adclick/adclick/io/store/backend"
	"github.com/adclick/adclick/services/dbwriter"
)

// runDBWriter consumes the results (or raw) topic into the store.
func runDBWriter(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "dbwriter")
	var t topics
	var so storeOptions
	var mf metricsFlags
	t.register(fs)
	so.register(fs, "store")
	mf.register(fs)
	rf := newRetentionFlags(fs, serverRetention)
	kind := fs.String("kind", string(dbwriter.Results), "what to write: results (aggregation topic → aggregate store) or raw (raw topic → raw store)")
	group := fs.String("group", "", "consumer group (default adclick-dbwriter-<kind>)")
	if err := parseFlags(fs, env, args); err != nil {
		return err
	}
	conn, err := t.connection(env)
	if err != nil {
		return err
	}
	sc, err := so.config(env, "store")
	if err != nil {
		return err
	}
	rf.apply(&sc)
	reg := newRegistry()
	cfg := dbwriter.Config{Brokers: conn.brokers, Security: conn.sec, Kind: dbwriter.Kind(*kind), Group: *group, Log: env.log, Registry: reg}
	cfg.Topic = t.results
	if cfg.Kind == dbwriter.Raw {
		cfg.Topic = t.raw
	}
	if cfg.Group == "" {
		cfg.Group = "adclick-dbwriter-" + *kind
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := conn.probe(ctx, env, true); err != nil {
		return err
	}
	st, err := backend.Open(ctx, sc, reg)
	if err != nil {
		return fmt.Errorf("opening the store: %w", err)
	}
	defer st.Close()
	defer rf.start(ctx, env, st, sc.Backend, reg)() // stops before the store closes
	// The writer's lag: what its group has not yet written.
	closeLag, err := registerGroupLag(reg, conn, cfg.Group)
	if err != nil {
		return err
	}
	defer closeLag()
	stop, err := mf.serve(env, reg)
	if err != nil {
		return err
	}
	defer stop()
	env.log.Info("db writer starting", "kind", cfg.Kind, "topic", cfg.Topic, "store", sc.Backend)
	if err := dbwriter.Run(ctx, cfg, st); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
