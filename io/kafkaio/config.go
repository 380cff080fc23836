package kafkaio

import (
	"errors"
	"fmt"
	"time"

	"github.com/adclick/adclick/io/kafkasec"
)

// StartOffset says where a partition without a committed offset starts.
type StartOffset string

// Start positions.
const (
	Earliest StartOffset = "earliest"
	Latest   StartOffset = "latest"
)

// ReadConfig configures Read. Zero durations and limits take the defaults
// shown; Brokers and Topic are required.
type ReadConfig struct {
	Brokers []string // seed brokers, host:port
	// Security is how the clients connect (TLS, SASL). It travels to the
	// workers with the DoFns: it names the password's file or variable, and
	// each worker reads it when it builds a client.
	Security kafkasec.Security
	Topic    string
	// Group is the consumer group whose committed offsets say where to start
	// and to which the reader commits safe offsets. Empty: no commits, every
	// start is at StartOffset.
	Group       string
	StartOffset StartOffset // without a committed offset (default Earliest)
	// Partitions limits the read to these partitions; empty means all the
	// topic has when the pipeline starts.
	Partitions []int32
	// EndOffsets makes the read bounded: each partition stops at the high
	// watermark it had when the pipeline started (benchmarks, replays).
	EndOffsets bool
	// NoLateness marks every batch click.NoWatermark, so nothing is too
	// late downstream (docs/spec.md §2, batch: a replay counts every valid click). The
	// watermark reported to the runner is unchanged.
	NoLateness bool

	WatermarkDelay  time.Duration // watermark = max event time − this (default 5 s)
	WatermarkStep   time.Duration // watermark granularity (default 1 s)
	MaxSkew         time.Duration // timestamps further ahead of wall clock are clamped (default 1 min)
	IdleTimeout     time.Duration // nothing to read this long: idle rule (default 10 s)
	AllowedLateness time.Duration // of the windows downstream (default 5 min, docs/spec.md §2)
	WindowSpan      time.Duration // longest window downstream (n-minute top-N: n min); a minute closes with the last window holding it (default 1 min)
	Margin          time.Duration // extra event time before a window counts as closed (default 30 s)
	CommitDelay     time.Duration // a safe position is committed this long after it was computed (default 10 s)
	// Coordination: how readers agree on progress (default InProcess; see
	// Coordination). Pick it from the runner.
	Coordination Coordination
	// Gate, when set, also holds each commit until the gated writers have
	// written every result of the minutes it closes (see Gate). InProcess
	// only.
	Gate           Gate
	CommitInterval time.Duration // how often a safe position is computed (default 5 s)

	// MaxBundleAdvance caps how far the watermark moves within one bundle
	// (default 10 min). It bounds how much backlog one bundle takes on: on
	// prism every bundle costs milliseconds, so reading a backlog in 20-s
	// slices ran the streaming benchmark at 139k events/s and in 10-min
	// slices at 358k/s (BENCHMARKS.md). A consumer whose state expires with
	// the watermark must tolerate elements a bundle's advance behind it;
	// transforms' keyed stages never drop data and keep state a minute past
	// the last accepted click, which a record's own watermark bounds.
	MaxBundleAdvance time.Duration
	// CheckpointEvery: a bundle checkpoints itself after this long (default
	// 250 ms). It bounds freshness: prism runs a stateful stage only when its
	// input watermark moves, and the watermark moves only at checkpoints, so
	// each keyed-state stage downstream waits up to one interval. With 1 s,
	// click → store took 7.8 s p50 / 10.1 s p99 at 1,000 clicks/s; with
	// 250 ms 2.5–3.0 s / 3.8–4.7 s (BENCHMARKS.md).
	CheckpointEvery  time.Duration
	CheckpointAfter  int           // or after this many records (default 500,000)
	PollTimeout      time.Duration // longest wait for one poll (default 250 ms)
	IdleResume       time.Duration // resume delay after an empty poll (default 100 ms)
	MaxPollRecords   int           // records per poll, i.e. per emitted batch at most (default 10,000)
	FetchMaxBytes    int32         // per fetch request (default 4 MiB)
	RequestTimeout   time.Duration // admin and commit requests (default 30 s)
	DialTimeout      time.Duration // default 10 s
	AllowMissingMeta bool          // restart from a committed offset whose metadata is not ours (fresh watermark) instead of failing
}

func (c *ReadConfig) withDefaults() ReadConfig {
	r := *c
	r.Brokers = append([]string(nil), c.Brokers...)
	r.Partitions = append([]int32(nil), c.Partitions...)
	if r.StartOffset == "" {
		r.StartOffset = Earliest
	}
	if r.Coordination == "" {
		r.Coordination = InProcess
	}
	setDur(&r.WatermarkDelay, 5*time.Second)
	setDur(&r.WatermarkStep, time.Second)
	setDur(&r.MaxSkew, time.Minute)
	setDur(&r.IdleTimeout, 10*time.Second)
	setDur(&r.AllowedLateness, 5*time.Minute)
	setDur(&r.WindowSpan, time.Minute)
	setDur(&r.Margin, 30*time.Second)
	setDur(&r.CommitDelay, 10*time.Second)
	setDur(&r.CommitInterval, 5*time.Second)
	setDur(&r.CheckpointEvery, 250*time.Millisecond)
	setDur(&r.MaxBundleAdvance, 10*time.Minute)
	setDur(&r.PollTimeout, 250*time.Millisecond)
	setDur(&r.IdleResume, 100*time.Millisecond)
	setDur(&r.RequestTimeout, 30*time.Second)
	setDur(&r.DialTimeout, 10*time.Second)
	if r.CheckpointAfter == 0 {
		r.CheckpointAfter = 500_000
	}
	if r.MaxPollRecords == 0 {
		r.MaxPollRecords = 10_000
	}
	if r.FetchMaxBytes == 0 {
		r.FetchMaxBytes = 4 << 20
	}
	return r
}

func setDur(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

// Validate reports every problem with the configuration (after defaults).
func (c *ReadConfig) Validate() error {
	r := c.withDefaults()
	var errs []error
	if len(r.Brokers) == 0 {
		errs = append(errs, errors.New("kafkaio: no brokers"))
	}
	for _, b := range r.Brokers {
		if b == "" {
			errs = append(errs, errors.New("kafkaio: empty broker address"))
		}
	}
	if r.Topic == "" {
		errs = append(errs, errors.New("kafkaio: no topic"))
	}
	// Only what needs no file: the workers, not this process, read them.
	if err := r.Security.Check(); err != nil {
		errs = append(errs, err)
	}
	if err := r.Coordination.validate(); err != nil {
		errs = append(errs, err)
	}
	if r.Coordination == Checkpointed && r.Gate.ID != "" {
		errs = append(errs, errors.New("kafkaio: a gate coordinates through process memory: not with Checkpointed coordination"))
	}
	if r.StartOffset != Earliest && r.StartOffset != Latest {
		errs = append(errs, fmt.Errorf("kafkaio: start offset %q: want %q or %q", r.StartOffset, Earliest, Latest))
	}
	seen := map[int32]bool{}
	for _, p := range r.Partitions {
		if p < 0 || seen[p] {
			errs = append(errs, fmt.Errorf("kafkaio: partition %d negative or listed twice", p))
		}
		seen[p] = true
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"WatermarkDelay", r.WatermarkDelay}, {"WatermarkStep", r.WatermarkStep}, {"MaxSkew", r.MaxSkew},
		{"IdleTimeout", r.IdleTimeout}, {"AllowedLateness", r.AllowedLateness}, {"WindowSpan", r.WindowSpan}, {"Margin", r.Margin},
		{"CommitDelay", r.CommitDelay}, {"CommitInterval", r.CommitInterval},
		{"CheckpointEvery", r.CheckpointEvery}, {"MaxBundleAdvance", r.MaxBundleAdvance}, {"PollTimeout", r.PollTimeout}, {"IdleResume", r.IdleResume},
		{"RequestTimeout", r.RequestTimeout}, {"DialTimeout", r.DialTimeout},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("kafkaio: %s is negative (%v)", d.name, d.v))
		}
	}
	if r.WatermarkStep < time.Millisecond {
		errs = append(errs, fmt.Errorf("kafkaio: WatermarkStep %v is below 1 ms", r.WatermarkStep))
	}
	if r.CheckpointAfter < 0 || r.MaxPollRecords < 0 || r.FetchMaxBytes < 0 {
		errs = append(errs, errors.New("kafkaio: CheckpointAfter, MaxPollRecords and FetchMaxBytes must not be negative"))
	}
	return errors.Join(errs...)
}

// WriteConfig configures Write and Producer.
type WriteConfig struct {
	Brokers  []string
	Security kafkasec.Security // as ReadConfig.Security
	Topic    string
	// Linger waits this long to fill a batch (default 5 ms; Flush at the end of
	// each bundle sends what is left anyway).
	Linger         time.Duration
	MaxBufferedRec int           // records buffered before Produce blocks (default 100,000)
	FlushTimeout   time.Duration // a bundle fails if its records are not acknowledged by then (default 2 min)
	DialTimeout    time.Duration // default 10 s
}

func (c *WriteConfig) withDefaults() WriteConfig {
	r := *c
	r.Brokers = append([]string(nil), c.Brokers...)
	setDur(&r.Linger, 5*time.Millisecond)
	setDur(&r.FlushTimeout, 2*time.Minute)
	setDur(&r.DialTimeout, 10*time.Second)
	if r.MaxBufferedRec == 0 {
		r.MaxBufferedRec = 100_000
	}
	return r
}

// Validate reports every problem with the configuration.
func (c *WriteConfig) Validate() error {
	r := c.withDefaults()
	var errs []error
	if len(r.Brokers) == 0 {
		errs = append(errs, errors.New("kafkaio: no brokers"))
	}
	for _, b := range r.Brokers {
		if b == "" {
			errs = append(errs, errors.New("kafkaio: empty broker address"))
		}
	}
	if r.Topic == "" {
		errs = append(errs, errors.New("kafkaio: no topic"))
	}
	if err := r.Security.Check(); err != nil {
		errs = append(errs, err)
	}
	if r.Linger < 0 || r.FlushTimeout < 0 || r.DialTimeout < 0 || r.MaxBufferedRec < 0 {
		errs = append(errs, errors.New("kafkaio: negative Linger, FlushTimeout, DialTimeout or MaxBufferedRec"))
	}
	return errors.Join(errs...)
}
