package main

import (
	"context"
	"flag"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/io/store/backend"
	"github.com/adclick/adclick/io/store/lifecycle"
)

// retentionFlags are the store lifecycle settings of the long-running
// commands (serve, dbwriter, allinone): how long raw clicks and aggregates
// are kept, how long replaced rows wait before they are collected, and how
// often this process collects (docs/storage.md).
type retentionFlags struct {
	raw, aggregates, grace, interval time.Duration
}

// retentionDefaults are a command's defaults: the all-in-one keeps less.
type retentionDefaults struct{ raw, aggregates time.Duration }

// serverRetention are the defaults of serve and dbwriter.
var serverRetention = retentionDefaults{raw: store.DefaultRawRetention}

// register registers --store-raw-retention, --aggregate-retention,
// --gc-grace and --lifecycle-interval. Each value is checked as it is set
// (flag or ADCLICK_ variable), so a bad one is a usage error. The raw one is
// not --raw-retention: that is the raw Kafka topic's (topics), and one
// ADCLICK_RAW_RETENTION would set both.
func (r *retentionFlags) register(fs *flag.FlagSet, d retentionDefaults) {
	r.raw, r.aggregates, r.grace, r.interval = d.raw, d.aggregates, lifecycle.DefaultGCGrace, lifecycle.DefaultInterval
	durationFlag(fs, &r.raw, "store-raw-retention", time.Hour, false,
		"keep raw clicks this long after their event time (whole hours are deleted; Cassandra rows also get it as their TTL); replay and reconcile refuse ranges older than it")
	durationFlag(fs, &r.aggregates, "aggregate-retention", 24*time.Hour, true,
		"keep counts and top lists this long after their minute (whole UTC days are deleted); 0 keeps them forever")
	durationFlag(fs, &r.grace, "gc-grace", time.Minute, false,
		"delete the rows a replay replaced this long after its commit, when readers of the old rows have finished")
	durationFlag(fs, &r.interval, "lifecycle-interval", time.Minute, true,
		"run retention and garbage collection this often; 0: not in this process (on Cassandra one process running it is enough)")
}

// newRetentionFlags registers the lifecycle flags with a command's defaults.
func newRetentionFlags(fs *flag.FlagSet, d retentionDefaults) *retentionFlags {
	r := &retentionFlags{}
	r.register(fs, d)
	return r
}

// durationFlag is a duration flag of at least minimum (or 0 when zeroOK).
func durationFlag(fs *flag.FlagSet, p *time.Duration, name string, minimum time.Duration, zeroOK bool, usage string) {
	fs.Func(name, fmt.Sprintf("%s (default %v)", usage, *p), func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return err
		}
		if d < minimum && !(zeroOK && d == 0) {
			if zeroOK {
				return fmt.Errorf("%v: 0 or at least %v", d, minimum)
			}
			return fmt.Errorf("%v: at least %v", d, minimum)
		}
		*p = d
		return nil
	})
}

// apply gives a store config the raw retention (Cassandra writes it as the
// raw rows' TTL).
func (r *retentionFlags) apply(cfg *backend.Config) { cfg.RawRetention = r.raw }

// start runs st's lifecycle in the background until ctx ends, and returns
// the function that stops it and waits: call it before closing st (defer
// it after the store's Close).
func (r *retentionFlags) start(ctx context.Context, env *cliEnv, st store.Store, backendName string, reg prometheus.Registerer) (stop func()) {
	if r.interval == 0 {
		env.log.Info("store lifecycle off in this process (--lifecycle-interval 0)")
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := lifecycle.Run(ctx, st, lifecycle.Config{RawRetention: r.raw, AggregateRetention: r.aggregates, GCGrace: r.grace,
			Interval: r.interval, Log: env.log.With("component", "lifecycle"), Registerer: reg, Backend: backendName})
		if err != nil {
			env.log.Error("store lifecycle stopped: nothing expires or is collected in this process", "err", err)
		}
	}()
	env.log.Info("store lifecycle running", "raw_retention", r.raw, "aggregate_retention", r.aggregates, "gc_grace", r.grace, "interval", r.interval)
	return func() { cancel(); wg.Wait() }
}

// allInOneRetention keeps the all-in-one's disk use bounded on a laptop:
// two hours of raw clicks (enough to replay the last hour with 60-minute
// windows) and one day of aggregates (docs/storage.md gives the footprint).
var allInOneRetention = retentionDefaults{raw: 2 * time.Hour, aggregates: 24 * time.Hour}
