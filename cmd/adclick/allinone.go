package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
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
)

// runAllInOne runs the whole system in one process with no external
// service: an in-process Kafka-protocol broker (kfake), the click generator
// writing a log file, the log watcher, the streaming job on prism, the two DB
// writers, the embedded Pebble store and the query API with its dashboard.
//
// kfake keeps topics in memory, so on every start the log watcher publishes
// the whole click log again and the streaming job recomputes every window
// from it: results are accumulating and written by key, so stored values are
// rewritten with the same numbers and open windows are complete again. The
// generator stops growing the log at --max-log-mb to bound that replay.
func runAllInOne(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "allinone")
	dataDir := fs.String("data-dir", ".cache/allinone", "where the click log and the Pebble store live")
	listen := fs.String("listen", "127.0.0.1:8080", "query API and dashboard address")
	rate := fs.Float64("rate", 1000, "clicks per second the generator writes")
	maxLogMB := fs.Int64("max-log-mb", 256, "the generator stops when the click log reaches this size")
	partitions := fs.Int("partitions", 4, "partitions of the raw and results topics")
	dup := fs.Float64("dup-share", 0.03, "share of duplicate lines")
	late := fs.Float64("late-share", 0.02, "share of late (within lateness) lines")
	tooLate := fs.Float64("too-late-share", 0.005, "share of too-late lines")
	malformed := fs.Float64("malformed-share", 0.005, "share of malformed lines")
	var ao aggOptions
	ao.register(fs)
	fs.Lookup("runner").Usage = "not used: the all-in-one always runs its streaming job in-process on prism"
	if err := parseFlags(fs, env, args); err != nil {
		return err
	}
	agg, err := ao.config()
	if err != nil {
		return err
	}
	if *partitions < 1 || *partitions > 64 {
		return fmt.Errorf("%w: --partitions %d must be 1..64", errUsage, *partitions)
	}
	if *maxLogMB < 1 {
		return fmt.Errorf("%w: --max-log-mb must be positive", errUsage)
	}
	if err := os.MkdirAll(*dataDir, 0o755); err != nil {
		return err
	}
	logPath := filepath.Join(*dataDir, "clicks.jsonl")
	sc := backend.Config{Backend: backend.Pebble, Path: filepath.Join(*dataDir, "pebble")}

	const rawTopic, resultsTopic, deadTopic = "adclick-raw", "adclick-results", "adclick-dead-letters"
	// Small segments: kfake frees a deleted record's memory only with its
	// whole segment (brokerTrim), and its default segment is 100 MB.
	broker, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(*partitions), rawTopic, resultsTopic, deadTopic),
		kfake.BrokerConfigs(map[string]string{"log.segment.bytes": strconv.Itoa(1 << 20)}))
	if err != nil {
		return fmt.Errorf("starting the embedded Kafka broker: %w", err)
	}
	defer broker.Close()
	brokers := broker.ListenAddrs()

	st, err := backend.Open(ctx, sc, nil)
	if err != nil {
		return fmt.Errorf("opening the store: %w", err)
	}
	defer st.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	stateDir, err := os.MkdirTemp("", "adclick-allinone-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stateDir)

	g, ctx := errgroup.WithContext(ctx)
	// 1. The generator appends to the click log, as an ad server would.
	g.Go(func() error {
		return generate(ctx, env, logPath, *maxLogMB<<20, *rate, clickgen.Config{
			Seed: uint64(time.Now().UnixNano()), Start: time.Now(), EventRate: *rate,
			DupShare: *dup, LateShare: *late, TooLateShare: *tooLate, MalformedShare: *malformed,
		})
	})
	// 2. The log watcher publishes it to the raw topic, keyed by ad_id.
	lw, err := logwatch.New(logwatch.Config{Globs: []string{logPath}, Brokers: brokers, Topic: rawTopic,
		StatePath: filepath.Join(stateDir, "logwatch.json"), Logger: env.log, Registerer: reg})
	if err != nil {
		return err
	}
	g.Go(func() error { return ignoreCancel(lw.Run(ctx)) })
	// 3. The streaming job on prism.
	agg.Streaming = true
	scfg := pipelines.StreamConfig{
		Raw:         kafkaio.ReadConfig{Brokers: brokers, Topic: rawTopic, Group: "adclick-stream", AllowedLateness: agg.AllowedLateness},
		Results:     kafkaio.WriteConfig{Brokers: brokers, Topic: resultsTopic},
		DeadLetters: kafkaio.WriteConfig{Brokers: brokers, Topic: deadTopic},
		Aggregation: agg,
	}
	g.Go(func() error { return runStreamJob(ctx, env, scfg, runners.Options{Runner: runners.Prism}) })
	// 4. The DB writers: results → aggregates, raw lines → raw clicks.
	for _, w := range []struct {
		kind  dbwriter.Kind
		topic string
	}{{dbwriter.Results, resultsTopic}, {dbwriter.Raw, rawTopic}} {
		cfg := dbwriter.Config{Brokers: brokers, Topic: w.topic, Group: "adclick-dbwriter-" + string(w.kind), Kind: w.kind, Log: env.log, Registry: reg}
		g.Go(func() error { return ignoreCancel(dbwriter.Run(ctx, cfg, st)) })
	}
	// 5. The query API and dashboard.
	srv, err := queryapi.New(queryapi.Config{Store: st, Logger: env.log, Registerer: reg, Gatherer: reg,
		WindowSizes: agg.WindowSizes, TopN: agg.TopN, Insecure: true})
	if err != nil {
		return err
	}
	g.Go(func() error { return ignoreCancel(srv.ListenAndServe(ctx, *listen)) })

	g.Go(func() error { return printLive(ctx, env, st, agg.WindowSizes[0]) })

	// 6. Keep the in-memory broker from growing with uptime.
	acl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return fmt.Errorf("admin client of the embedded broker: %w", err)
	}
	defer acl.Close()
	trim := &brokerTrim{adm: kadm.NewClient(acl), log: env.log, keep: 10 * time.Minute, deadKeep: 10_000,
		groups: map[string][]string{rawTopic: {"adclick-dbwriter-raw"}, resultsTopic: {"adclick-dbwriter-results"}, deadTopic: nil},
		byTime: map[string]bool{rawTopic: true}}
	g.Go(func() error { return trim.run(ctx, 30*time.Second) })

	env.log.Info("all-in-one running: open the dashboard; Ctrl-C stops",
		"dashboard", "http://"+*listen+"/", "api_example", "http://"+*listen+"/ads/popular_ads?window_size=1",
		"click_log", logPath, "store", sc.Path, "kafka", brokers)
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	env.log.Info("all-in-one stopped; the click log and the store are kept", "data_dir", *dataDir)
	return err
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
