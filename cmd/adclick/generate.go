package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/adclick/adclick/testing/clickgen"
)

func runGenerate(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "generate")
	var o generateOptions
	o.register(fs)
	if err := parseFlags(fs, env, args); err != nil {
		return err
	}
	cfg, err := o.config()
	if err != nil {
		return err
	}
	g, err := clickgen.New(cfg)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	w, closeOut, err := o.openOut(env)
	if err != nil {
		return err
	}
	defer closeOut()
	began := time.Now()
	n, err := clickgen.Run(ctx, g, clickgen.NewWriterSink(w), clickgen.RunOptions{Count: o.count, Rate: o.rate})
	el := time.Since(began)
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if f, ok := w.(*os.File); ok && f != env.stdout {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync --out: %w", err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("close --out: %w", err)
		}
	}
	env.log.Info("generated", "lines", n, "seconds", el.Seconds(), "lines_per_s", float64(n)/max(el.Seconds(), 1e-9),
		"first_event_time", cfg.Start.UTC().Format(time.RFC3339Nano), "seed", o.seed)
	if t := g.Truth(); t != nil {
		if err := t.WriteFile(o.truth); err != nil {
			return err
		}
		env.log.Info("truth", "file", o.truth, "counts", t.Counts)
	}
	return nil
}

// generateOptions are the flags of adclick generate.
type generateOptions struct {
	count                         int64
	rate, zipfS, eventRate        float64
	dup, late, tooLate, malformed float64
	out, start, truth             string
	appendOut, uniform            bool
	seed                          uint64
	ads                           int
	jitter                        time.Duration
}

func (o *generateOptions) register(fs *flag.FlagSet) {
	fs.Int64Var(&o.count, "count", 0, "lines to generate; 0 = until interrupted")
	fs.Float64Var(&o.rate, "rate", 0, "lines per wall-clock second; 0 = as fast as possible")
	fs.StringVar(&o.out, "out", "-", "output file (appended to), or - for stdout")
	fs.BoolVar(&o.appendOut, "append", true, "append to --out; false truncates it first")
	fs.Uint64Var(&o.seed, "seed", 1, "random seed: the same seed, flags and --start give the same lines")
	fs.IntVar(&o.ads, "ads", clickgen.DefaultAds, "number of distinct ads")
	fs.Float64Var(&o.zipfS, "zipf-s", clickgen.DefaultZipfS, "Zipf exponent of ad popularity (> 1; larger = more skewed)")
	fs.BoolVar(&o.uniform, "uniform", false, "every ad equally likely instead of Zipf")
	fs.Float64Var(&o.eventRate, "event-rate", 0, "lines per second of event time; 0 = --rate, or 1000 when --rate is 0")
	fs.DurationVar(&o.jitter, "jitter", clickgen.DefaultJitter, "event times lag by up to this much (out-of-order lines)")
	fs.Float64Var(&o.dup, "dup-share", 0, "share (0..1) of lines that re-send an earlier click")
	fs.Float64Var(&o.late, "late-share", 0, "share (0..1) of clicks 1-4 min behind the current event time")
	fs.Float64Var(&o.tooLate, "too-late-share", 0, "share (0..1) of clicks 15-60 min behind (dropped as too late)")
	fs.Float64Var(&o.malformed, "malformed-share", 0, "share (0..1) of lines that violate docs/spec.md §1")
	fs.StringVar(&o.start, "start", "now", "event time of the first line: RFC 3339 or now")
	fs.StringVar(&o.truth, "truth", "", "write the ground truth (which lines are duplicate, late, too late, malformed) as JSON to this file; needs --count")
}

// config checks the flags and translates them into the generator's
// configuration (clickgen.New checks the rest).
func (o *generateOptions) config() (clickgen.Config, error) {
	cfg := clickgen.Config{
		Seed: o.seed, Ads: o.ads, ZipfS: o.zipfS, Uniform: o.uniform, EventRate: o.eventRate, Jitter: o.jitter,
		DupShare: o.dup, LateShare: o.late, TooLateShare: o.tooLate, MalformedShare: o.malformed,
		Truth: o.truth != "",
	}
	if o.jitter == 0 {
		cfg.Jitter = time.Nanosecond // 0 means default in Config; 1ns rounds to no jitter
	}
	if cfg.EventRate == 0 {
		cfg.EventRate = o.rate
	}
	switch s := strings.TrimSpace(o.start); s {
	case "now", "":
		cfg.Start = time.Now().UTC()
	default:
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return cfg, fmt.Errorf("%w: --start %q: want RFC 3339 (2026-01-01T00:00:00Z) or now", errUsage, s)
		}
		cfg.Start = t
	}
	if o.count < 0 {
		return cfg, fmt.Errorf("%w: --count must be ≥ 0, got %d", errUsage, o.count)
	}
	if o.rate < 0 {
		return cfg, fmt.Errorf("%w: --rate must be ≥ 0, got %v", errUsage, o.rate)
	}
	if o.truth != "" && o.count == 0 {
		return cfg, fmt.Errorf("%w: --truth needs a bounded stream: set --count", errUsage)
	}
	if o.out == "" {
		return cfg, fmt.Errorf("%w: --out is empty: give a file or - for stdout", errUsage)
	}
	return cfg, nil
}

// openOut opens --out: standard output for -, else the file, appended to
// unless --append=false. closeOut closes a file on an early return; after a
// successful run the caller syncs and closes it itself, and closing it
// again does no harm.
func (o *generateOptions) openOut(env *cliEnv) (w io.Writer, closeOut func(), err error) {
	if o.out == "-" {
		return env.stdout, func() {}, nil
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_APPEND
	if !o.appendOut {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(o.out, flags, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("open --out: %w", err)
	}
	return f, func() { f.Close() }, nil
}
