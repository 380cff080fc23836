package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/io/kafkaio"
	"github.com/adclick/adclick/pipelines"
	"github.com/adclick/adclick/queryapi/metrics"
	"github.com/adclick/adclick/runners"
	"github.com/adclick/adclick/transforms"
)

// streamOptions are the streaming job's flags.
type streamOptions struct {
	topics
	group      string
	lateness   time.Duration
	early      time.Duration
	wmDelay    time.Duration
	idle       time.Duration
	start      string
	ao         aggOptions
	endpoint   string
	env        string
	envConfig  string
	faultGBtoU bool
	metrics    metricsFlags
	pprofAddr  string
}

func (o *streamOptions) register(fs *flag.FlagSet) {
	o.topics.register(fs)
	fs.StringVar(&o.group, "group", "adclick-stream", "consumer group whose committed offsets are the job's safe restart points")
	fs.DurationVar(&o.lateness, "allowed-lateness", 5*time.Minute, "a click whose window closed more than this before the watermark is too late")
	fs.DurationVar(&o.early, "early-firing", time.Second, "how often a key emits what changed, in event time on the job's watermark (which follows the clock while the job keeps up)")
	fs.DurationVar(&o.wmDelay, "watermark-delay", 5*time.Second, "watermark = newest event time - this")
	fs.DurationVar(&o.idle, "idle-timeout", 10*time.Second, "a partition idle this long advances its watermark with the clock")
	fs.StringVar(&o.start, "start-offset", "earliest", "where to start without a committed offset: earliest or latest")
	o.ao.registerStreaming(fs)
	fs.StringVar(&o.endpoint, "endpoint", "", "job server host:port (--runner flink)")
	fs.StringVar(&o.env, "environment", "LOOPBACK", "how a portable runner runs Go workers: LOOPBACK, PROCESS or DOCKER")
	fs.StringVar(&o.envConfig, "environment-config", "", "PROCESS command or DOCKER image")
	fs.BoolVar(&o.faultGBtoU, "test-fault-gb-as-uk", false, "TEST ONLY: deliberately count country GB as UK (for recalculation drills)")
	o.metrics.register(fs)
	fs.StringVar(&o.pprofAddr, "pprof-addr", "", "debug: serve net/http/pprof on this address (e.g. 127.0.0.1:6061); empty: off")
}

func (o *streamOptions) config(env *cliEnv) (pipelines.StreamConfig, runners.Options, error) {
	conn, err := o.connection(env)
	if err != nil {
		return pipelines.StreamConfig{}, runners.Options{}, err
	}
	brokers, sec := conn.brokers, conn.sec
	agg, err := o.ao.configFor(true)
	if err != nil {
		return pipelines.StreamConfig{}, runners.Options{}, err
	}
	agg.Streaming = true
	agg.AllowedLateness = o.lateness
	agg.EarlyFiring = o.early
	if o.faultGBtoU {
		agg.FaultCountryAs = [2]string{"GB", "UK"}
	}
	cfg := pipelines.StreamConfig{
		Raw: kafkaio.ReadConfig{Brokers: brokers, Security: sec, Topic: o.raw, Group: o.group, StartOffset: kafkaio.StartOffset(o.start),
			WatermarkDelay: o.wmDelay, IdleTimeout: o.idle, AllowedLateness: o.lateness},
		Results:     kafkaio.WriteConfig{Brokers: brokers, Security: sec, Topic: o.results},
		DeadLetters: kafkaio.WriteConfig{Brokers: brokers, Security: sec, Topic: o.dead},
		Aggregation: agg,
	}
	if err := cfg.Validate(); err != nil {
		return cfg, runners.Options{}, fmt.Errorf("%w: %v", errUsage, err)
	}
	ro := runners.Options{Runner: o.ao.runner, Endpoint: o.endpoint, Environment: o.env, EnvironmentConfig: o.envConfig}
	if err := ro.Validate(); err != nil {
		return cfg, ro, fmt.Errorf("%w: %v", errUsage, err)
	}
	return cfg, ro, nil
}

// runStream runs the streaming job until interrupted.
func runStream(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "stream")
	var o streamOptions
	o.register(fs)
	if err := parseFlags(fs, env, args); err != nil {
		return err
	}
	cfg, ro, err := o.config(env)
	if err != nil {
		return err
	}
	var pprofLn net.Listener
	if o.pprofAddr != "" {
		if pprofLn, err = listenPprof(o.pprofAddr); err != nil {
			return err
		}
		go func() {
			if err := servePprof(ctx, env, pprofLn); err != nil {
				env.log.Error("pprof endpoint", "err", err)
			}
		}()
	}
	conn := kafkaConn{brokers: cfg.Raw.Brokers, sec: cfg.Raw.Security, timeout: o.sec.probeTimeout}
	// The launcher's probe: the workers build their own clients, with the
	// same Security, once the job runs.
	if err := conn.probe(ctx, env, true); err != nil {
		return err
	}
	reg := newRegistry()
	closeLag, err := registerGroupLag(reg, conn, cfg.Raw.Group)
	if err != nil {
		return err
	}
	defer closeLag()
	stop, err := o.metrics.serve(env, reg)
	if err != nil {
		return err
	}
	defer stop()
	return runStreamJob(ctx, env, cfg, ro, reg)
}

// runStreamJob runs the streaming job until ctx ends, its metrics followed
// (runners.JobMetrics) and exported into reg.
func runStreamJob(ctx context.Context, env *cliEnv, cfg pipelines.StreamConfig, ro runners.Options, reg prometheus.Registerer) error {
	jm := &runners.JobMetrics{Log: env.log}
	ro.Metrics = jm
	if err := registerStreamMetrics(reg, jm); err != nil {
		return err
	}
	env.log.Info("streaming job starting", "runner", ro.Runner, "raw_topic", cfg.Raw.Topic, "results_topic", cfg.Results.Topic)
	err := pipelines.RunStream(ctx, cfg, ro)
	if ctx.Err() != nil {
		env.log.Info("streaming job stopped")
		return nil // interrupted: committed offsets are the restart points
	}
	if err != nil {
		return fmt.Errorf("streaming job: %w", err)
	}
	return nil
}

// registerStreamMetrics exports the job's metrics that jm follows.
func registerStreamMetrics(reg prometheus.Registerer, jm *runners.JobMetrics) error {
	return metrics.Register(reg, metrics.NewStream(func() metrics.StreamValues { return streamValues(jm.Snapshot()) }, nil))
}

// Beam metric names of the Kafka reader (io/kafkaio/read.go) and the
// transforms whose output the results writers write.
const (
	kafkaioNamespace   = "kafkaio"
	resultsWriterScope = "results"            // pipelines.Stream's scopes of the results writers: results0, results1, …
	resultsKVTransform = "pipelines.recordKV" // the ParDo whose output the results writers write
)

// streamValues maps the streaming job's Beam metrics to the families of
// queryapi/metrics.
func streamValues(s runners.JobSnapshot) metrics.StreamValues {
	agg := func(name string) int64 { return s.Counter(transforms.MetricNamespace, name) }
	kio := func(name string) int64 { return s.Counter(kafkaioNamespace, name) }
	v := metrics.StreamValues{
		At: s.At, Running: s.Running > 0,
		ClicksIn: agg(transforms.MetricClicksIn), Counted: agg(transforms.MetricValid),
		Duplicates: agg(transforms.MetricDuplicates), TooLate: agg(transforms.MetricTooLate),
		Rejected:    map[click.Reason]int64{},
		RecordsRead: kio("records_read"), Commits: kio("commits"), CommitErrors: kio("commit_errors"), DataLoss: kio("data_loss_events"),
		Watermark: map[int32]int64{}, PartitionLag: map[int32]int64{},
	}
	for _, r := range click.Reasons {
		v.Rejected[r] = agg(transforms.MetricRejected + string(r))
	}
	for name, n := range s.Elements {
		if strings.HasPrefix(name, resultsWriterScope) && strings.HasSuffix(name, "/"+resultsKVTransform) {
			v.ResultsWritten += n
		}
	}
	for k, g := range s.Gauges {
		if k.Namespace != kafkaioNamespace {
			continue
		}
		if p, ok := partitionOf(k.Name, kafkaio.MetricWatermarkPrefix); ok {
			v.Watermark[p] = g.Value
		} else if p, ok := partitionOf(k.Name, kafkaio.MetricLagPrefix); ok {
			v.PartitionLag[p] = g.Value
		}
	}
	return v
}

// partitionOf reads the partition of a per-partition metric name.
func partitionOf(name, prefix string) (int32, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return 0, false
	}
	p, err := strconv.ParseInt(rest, 10, 32)
	return int32(p), err == nil
}
