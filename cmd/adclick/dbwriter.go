package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/adclick/adclick/io/store/backend"
	"github.com/adclick/adclick/services/dbwriter"
	"github.com/prometheus/client_golang/prometheus"
)

// runDBWriter consumes the results (or raw) topic into the store.
func runDBWriter(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "dbwriter")
	var t topics
	var so storeOptions
	t.register(fs)
	so.register(fs, "store")
	kind := fs.String("kind", string(dbwriter.Results), "what to write: results (aggregation topic → aggregate store) or raw (raw topic → raw store)")
	group := fs.String("group", "", "consumer group (default adclick-dbwriter-<kind>)")
	if err := parseFlags(fs, env, args); err != nil {
		return err
	}
	brokers, err := t.brokerList()
	if err != nil {
		return err
	}
	sc, err := so.config("store")
	if err != nil {
		return err
	}
	cfg := dbwriter.Config{Brokers: brokers, Kind: dbwriter.Kind(*kind), Group: *group, Log: env.log, Registry: prometheus.NewRegistry()}
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
	st, err := backend.Open(ctx, sc, nil)
	if err != nil {
		return fmt.Errorf("opening the store: %w", err)
	}
	defer st.Close()
	env.log.Info("db writer starting", "kind", cfg.Kind, "topic", cfg.Topic, "store", sc.Backend)
	if err := dbwriter.Run(ctx, cfg, st); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
