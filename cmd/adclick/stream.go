package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/adclick/adclick/io/kafkaio"
	"github.com/adclick/adclick/pipelines"
	"github.com/adclick/adclick/runners"
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
}

func (o *streamOptions) config() (pipelines.StreamConfig, runners.Options, error) {
	brokers, err := o.brokerList()
	if err != nil {
		return pipelines.StreamConfig{}, runners.Options{}, err
	}
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
		Raw: kafkaio.ReadConfig{Brokers: brokers, Topic: o.raw, Group: o.group, StartOffset: kafkaio.StartOffset(o.start),
			WatermarkDelay: o.wmDelay, IdleTimeout: o.idle, AllowedLateness: o.lateness},
		Results:     kafkaio.WriteConfig{Brokers: brokers, Topic: o.results},
		DeadLetters: kafkaio.WriteConfig{Brokers: brokers, Topic: o.dead},
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
	cfg, ro, err := o.config()
	if err != nil {
		return err
	}
	return runStreamJob(ctx, env, cfg, ro)
}

func runStreamJob(ctx context.Context, env *cliEnv, cfg pipelines.StreamConfig, ro runners.Options) error {
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
