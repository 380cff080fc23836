package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/adclick/adclick/io/kafkaio"
	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/io/store/backend"
	"github.com/adclick/adclick/pipelines"
	"github.com/adclick/adclick/queryapi"
	"github.com/adclick/adclick/runners"
	"github.com/adclick/adclick/services/dbwriter"
	"github.com/adclick/adclick/services/logwatch"
	"github.com/adclick/adclick/testing/clickgen"
	"github.com/adclick/adclick/transforms"
)

// runAllInOne runs the whole system in one process with no external
// service: an in-process Kafka-protocol broker (kfake), the click generator
// writing a log file, the log watcher, the streaming job on prism, the two DB
// writers, the embedded Pebble store and the query API with its dashboard.
// Every component's metrics, the streaming job's own counters included, are
// on the API's /metrics.
//
// kfake's log lives in a temporary directory removed at exit, so on every
// start the log watcher publishes the whole click log again and the streaming
// job recomputes every window from it: results are accumulating and written by key, so stored values are
// rewritten with the same numbers and open windows are complete again. The
// generator stops growing the log at --max-log-mb to bound that replay.
func runAllInOne(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "allinone")
	var o allInOneOptions
	o.register(fs)
	if err := parseFlags(fs, env, args); err != nil {
		return err
	}
	agg, err := o.check()
	if err != nil {
		return err
	}
	var pprofLn net.Listener
	if o.pprofAddr != "" {
		if pprofLn, err = listenPprof(o.pprofAddr); err != nil {
			return err
		}
	}
	a, err := openAllInOne(ctx, &o)
	if err != nil {
		if pprofLn != nil {
			pprofLn.Close()
		}
		return err
	}
	defer a.close()

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return storeFailed(ctx, a.st) })
	if pprofLn != nil {
		g.Go(func() error { return ignoreCancel(servePprof(ctx, env, pprofLn)) })
	}
	for _, step := range []func(context.Context, *errgroup.Group, *cliEnv, transforms.Config) error{
		a.startLifecycle, a.startSources, a.startPipeline, a.startAPI, a.startTrim,
	} {
		if err := step(ctx, g, env, agg); err != nil {
			a.cancelAndWait(g)
			return err
		}
	}
	env.log.Info("all-in-one running: open the dashboard; Ctrl-C stops",
		"dashboard", "http://"+o.listen+"/", "api_example", "http://"+o.listen+"/ads/popular_ads?window_size=1",
		"metrics", "http://"+o.listen+"/metrics", "click_log", a.logPath, "store", a.sc.Path, "kafka", a.brokers)
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	env.log.Info("all-in-one stopped; the click log and the store are kept", "data_dir", o.dataDir)
	return err
}

// allInOneOptions are the all-in-one's flags.
type allInOneOptions struct {
	dataDir, listen               string
	rate                          float64
	maxLogMB                      int64
	partitions                    int
	dup, late, tooLate, malformed float64
	pprofAddr                     string
	ao                            aggOptions
	retention                     *retentionFlags
}

// aioMemTableBytes caps Pebble's memtables in the all-in-one: the raw clicks
// alone are ~11 MB a minute at 1,000 clicks/s, so the default 64 MiB
// memtables took ~15 minutes to reach full size and two of them (the mutable
// one and Pebble's spare) ~130 MB outside the Go heap; 8 MiB ones settle
// within minutes at ~16 MB.
const aioMemTableBytes = 8 << 20

func (o *allInOneOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.dataDir, "data-dir", ".cache/allinone", "where the click log and the Pebble store live")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8080", "query API, dashboard and /metrics address")
	fs.Float64Var(&o.rate, "rate", 1000, "clicks per second the generator writes")
	fs.Int64Var(&o.maxLogMB, "max-log-mb", 256, "the generator stops when the click log reaches this size")
	fs.IntVar(&o.partitions, "partitions", 4, "partitions of the raw and results topics")
	fs.Float64Var(&o.dup, "dup-share", 0.03, "share of duplicate lines")
	fs.Float64Var(&o.late, "late-share", 0.02, "share of late (within lateness) lines")
	fs.Float64Var(&o.tooLate, "too-late-share", 0.005, "share of too-late lines")
	fs.Float64Var(&o.malformed, "malformed-share", 0.005, "share of malformed lines")
	fs.StringVar(&o.pprofAddr, "pprof-addr", "", "debug: serve net/http/pprof on this address (e.g. 127.0.0.1:6061); empty: off")
	o.ao.register(fs)
	fs.Lookup("runner").Usage = "not used: the all-in-one always runs its streaming job in-process on prism"
	o.retention = newRetentionFlags(fs, allInOneRetention)
}

func (o *allInOneOptions) check() (transforms.Config, error) {
	agg, err := o.ao.config()
	if err != nil {
		return agg, err
	}
	if o.partitions < 1 || o.partitions > 64 {
		return agg, fmt.Errorf("%w: --partitions %d must be 1..64", errUsage, o.partitions)
	}
	if o.maxLogMB < 1 {
		return agg, fmt.Errorf("%w: --max-log-mb must be positive", errUsage)
	}
	agg.Streaming = true
	return agg, nil
}

// The all-in-one's topics and consumer groups.
const (
	aioRaw, aioResults, aioDead = "adclick-raw", "adclick-results", "adclick-dead-letters"
	aioStreamGroup              = "adclick-stream"
)

func aioWriterGroup(k dbwriter.Kind) string { return "adclick-dbwriter-" + string(k) }

// allInOne is what the all-in-one's components share.
type allInOne struct {
	o        *allInOneOptions
	broker   *kfake.Cluster
	brokers  []string
	st       store.Store
	sc       backend.Config
	reg      *prometheus.Registry
	logPath  string
	stateDir string
	closers  []func()
}

// openAllInOne starts the embedded broker and opens the store.
func openAllInOne(ctx context.Context, o *allInOneOptions) (*allInOne, error) {
	if err := os.MkdirAll(o.dataDir, 0o755); err != nil {
		return nil, err
	}
	a := &allInOne{o: o, reg: newRegistry(), logPath: filepath.Join(o.dataDir, "clicks.jsonl"),
		sc: backend.Config{Backend: backend.Pebble, Path: filepath.Join(o.dataDir, "pebble"), MemTableBytes: aioMemTableBytes}}
	o.retention.apply(&a.sc)
	// Process state that does not outlive the process: the log watcher's
	// positions and the embedded broker's log (closed before it is removed).
	var err error
	if a.stateDir, err = os.MkdirTemp("", "adclick-allinone-"); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func() { os.RemoveAll(a.stateDir) })
	broker, err := newEmbeddedBroker(filepath.Join(a.stateDir, "kafka"), int32(o.partitions), aioRaw, aioResults, aioDead)
	if err != nil {
		a.close()
		return nil, fmt.Errorf("starting the embedded Kafka broker: %w", err)
	}
	a.broker, a.brokers = broker, broker.ListenAddrs()
	a.closers = append(a.closers, broker.Close)
	if a.st, err = backend.Open(ctx, a.sc, a.reg); err != nil {
		a.close()
		return nil, fmt.Errorf("opening the store: %w", err)
	}
	a.closers = append(a.closers, func() { a.st.Close() })
	return a, nil
}

// close releases what openAllInOne and the steps opened, newest first.
func (a *allInOne) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
}

// cancelAndWait stops the steps already started after a later one failed:
// the group's context ends with the first goroutine's error only.
func (a *allInOne) cancelAndWait(g *errgroup.Group) {
	g.Go(func() error { return errAborted })
	_ = g.Wait()
}

var errAborted = errors.New("all-in-one: start-up aborted")

// startLifecycle expires old raw clicks and aggregates and collects replaced
// rows in the background (allInOneRetention), so the data directory stays
// bounded; it stops before the store closes.
func (a *allInOne) startLifecycle(ctx context.Context, _ *errgroup.Group, env *cliEnv, _ transforms.Config) error {
	a.closers = append(a.closers, a.o.retention.start(ctx, env, a.st, a.sc.Backend, a.reg))
	return nil
}

// startSources starts the generator, which appends to the click log as an
// ad server would, and the log watcher, which publishes it to the raw topic
// keyed by ad_id.
func (a *allInOne) startSources(ctx context.Context, g *errgroup.Group, env *cliEnv, _ transforms.Config) error {
	o := a.o
	g.Go(func() error {
		return generate(ctx, env, a.logPath, o.maxLogMB<<20, o.rate, clickgen.Config{
			Seed: uint64(time.Now().UnixNano()), Start: time.Now(), EventRate: o.rate,
			DupShare: o.dup, LateShare: o.late, TooLateShare: o.tooLate, MalformedShare: o.malformed,
		})
	})
	lw, err := logwatch.New(a.logwatchConfig(env))
	if err != nil {
		return err
	}
	g.Go(func() error { return ignoreCancel(lw.Run(ctx)) })
	return nil
}

// logwatchConfig is the all-in-one's log watcher: the click log to the raw
// topic, with batches large enough for the embedded broker (aioRawLinger).
func (a *allInOne) logwatchConfig(env *cliEnv) logwatch.Config {
	return logwatch.Config{Globs: []string{a.logPath}, Brokers: a.brokers, Topic: aioRaw, KafkaOpts: aioRawProducerOpts(),
		StatePath: filepath.Join(a.stateDir, "logwatch.json"), Logger: env.log, Registerer: a.reg}
}

// startPipeline starts the streaming job on prism and the two DB writers
// (results → aggregates, raw lines → raw clicks), with the consumer groups'
// lag exported.
func (a *allInOne) startPipeline(ctx context.Context, g *errgroup.Group, env *cliEnv, agg transforms.Config) error {
	scfg := pipelines.StreamConfig{
		Raw:         kafkaio.ReadConfig{Brokers: a.brokers, Topic: aioRaw, Group: aioStreamGroup, AllowedLateness: agg.AllowedLateness},
		Results:     kafkaio.WriteConfig{Brokers: a.brokers, Topic: aioResults},
		DeadLetters: kafkaio.WriteConfig{Brokers: a.brokers, Topic: aioDead},
		Aggregation: agg,
	}
	g.Go(func() error { return runStreamJob(ctx, env, scfg, runners.Options{Runner: runners.Prism}, a.reg) })
	for _, w := range []struct {
		kind  dbwriter.Kind
		topic string
	}{{dbwriter.Results, aioResults}, {dbwriter.Raw, aioRaw}} {
		cfg := dbwriter.Config{Brokers: a.brokers, Topic: w.topic, Group: aioWriterGroup(w.kind), Kind: w.kind, Log: env.log, Registry: a.reg}
		g.Go(func() error { return ignoreCancel(dbwriter.Run(ctx, cfg, a.st)) })
	}
	closeLag, err := registerConsumerLag(a.reg, a.brokers, aioStreamGroup, aioWriterGroup(dbwriter.Results), aioWriterGroup(dbwriter.Raw))
	if err != nil {
		return err
	}
	a.closers = append(a.closers, closeLag)
	return nil
}

// startAPI starts the query API, its dashboard and /metrics, and the live
// top list in the log.
func (a *allInOne) startAPI(ctx context.Context, g *errgroup.Group, env *cliEnv, agg transforms.Config) error {
	srv, err := queryapi.New(queryapi.Config{Store: a.st, Logger: env.log, Registerer: a.reg, Gatherer: a.reg,
		WindowSizes: agg.WindowSizes, TopN: agg.TopN, Insecure: true, Clicks: clicksHook(a.st)})
	if err != nil {
		return err
	}
	g.Go(func() error { return ignoreCancel(srv.ListenAndServe(ctx, a.o.listen)) })
	g.Go(func() error { return printLive(ctx, env, a.st, agg.WindowSizes[0]) })
	return nil
}

// startTrim keeps the in-memory broker from growing with uptime.
func (a *allInOne) startTrim(ctx context.Context, g *errgroup.Group, env *cliEnv, _ transforms.Config) error {
	acl, err := kgo.NewClient(kgo.SeedBrokers(a.brokers...))
	if err != nil {
		return fmt.Errorf("admin client of the embedded broker: %w", err)
	}
	a.closers = append(a.closers, acl.Close)
	trim := &brokerTrim{adm: kadm.NewClient(acl), log: env.log, keep: 10 * time.Minute, deadKeep: 10_000,
		groups: map[string][]string{aioRaw: {aioWriterGroup(dbwriter.Raw)}, aioResults: {aioWriterGroup(dbwriter.Results)}, aioDead: nil},
		byTime: map[string]bool{aioRaw: true}}
	g.Go(func() error { return trim.run(ctx, 30*time.Second) })
	return nil
}

// printLive logs the newest top list every 10 s, so the terminal shows live
// aggregates without a browser.
func printLive(ctx context.Context, env *cliEnv, st store.Store, windowSize int) error {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		m, err := st.LatestTopMinute(ctx, windowSize)
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) && ctx.Err() == nil {
				env.log.Warn("live top: reading the store", "err", err)
			}
			continue
		}
		top, err := st.Top(ctx, windowSize, m)
		if err != nil {
			continue
		}
		ads := top.Ads[:min(5, len(top.Ads))]
		parts := make([]string, len(ads))
		for i, a := range ads {
			parts[i] = fmt.Sprintf("%s=%d", a.AdID, a.Count)
		}
		env.log.Info("live top ads", "window_minutes", windowSize, "minute", time.Unix(m, 0).UTC().Format("15:04"),
			"top", strings.Join(parts, " "))
	}
}

// generate appends generated clicks to path at rate until ctx ends or the
// file reaches maxBytes.
func generate(ctx context.Context, env *cliEnv, path string, maxBytes int64, rate float64, cfg clickgen.Config) error {
	gen, err := clickgen.New(cfg)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	sink := clickgen.NewWriterSink(f)
	for ctx.Err() == nil {
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if fi.Size() >= maxBytes {
			env.log.Warn("click log reached --max-log-mb: the generator stops; the rest keeps running", "path", path, "bytes", fi.Size())
			return nil
		}
		// In slices of 10 s, so the size cap is checked as the log grows.
		if _, err := clickgen.Run(ctx, gen, sink, clickgen.RunOptions{Count: int64(max(1, rate*10)), Rate: rate}); err != nil {
			return ignoreCancel(err)
		}
	}
	return nil
}

func ignoreCancel(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
