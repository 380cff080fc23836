package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/adclick/adclick/testing/clickgen"
)

func runGenerate(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "generate")
	count := fs.Int64("count", 0, "lines to generate; 0 = until interrupted")
	rate := fs.Float64("rate", 0, "lines per wall-clock second; 0 = as fast as possible")
	out := fs.String("out", "-", "output file (appended to), or - for stdout")
	appendOut := fs.Bool("append", true, "append to --out; false truncates it first")
	seed := fs.Uint64("seed", 1, "random seed: the same seed, flags and --start give the same lines")
	ads := fs.Int("ads", clickgen.DefaultAds, "number of distinct ads")
	zipfS := fs.Float64("zipf-s", clickgen.DefaultZipfS, "Zipf exponent of ad popularity (> 1; larger = more skewed)")
	uniform := fs.Bool("uniform", false, "every ad equally likely instead of Zipf")
	eventRate := fs.Float64("event-rate", 0, "lines per second of event time; 0 = --rate, or 1000 when --rate is 0")
	jitter := fs.Duration("jitter", clickgen.DefaultJitter, "event times lag by up to this much (out-of-order lines)")
	dup := fs.Float64("dup-share", 0, "share (0..1) of lines that re-send an earlier click")
	late := fs.Float64("late-share", 0, "share (0..1) of clicks 1-4 min behind the current event time")
	tooLate := fs.Float64("too-late-share", 0, "share (0..1) of clicks 15-60 min behind (dropped as too late)")
	malformed := fs.Float64("malformed-share", 0, "share (0..1) of lines that violate docs/spec.md §1")
	start := fs.String("start", "now", "event time of the first line: RFC 3339 or now")
	truth := fs.String("truth", "", "write the ground truth (which lines are duplicate, late, too late, malformed) as JSON to this file; needs --count")
	if err := parseFlags(fs, env, args); err != nil {
		return err
	}

	cfg := clickgen.Config{
		Seed: *seed, Ads: *ads, ZipfS: *zipfS, Uniform: *uniform, EventRate: *eventRate, Jitter: *jitter,
		DupShare: *dup, LateShare: *late, TooLateShare: *tooLate, MalformedShare: *malformed,
		Truth: *truth != "",
	}
	if *jitter == 0 {
		cfg.Jitter = time.Nanosecond // 0 means default in Config; 1ns rounds to no jitter
	}
	if cfg.EventRate == 0 {
		cfg.EventRate = *rate
	}
	switch s := strings.TrimSpace(*start); s {
	case "now", "":
		cfg.Start = time.Now().UTC()
	default:
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return fmt.Errorf("%w: --start %q: want RFC 3339 (2026-01-01T00:00:00Z) or now", errUsage, s)
		}
		cfg.Start = t
	}
	if *count < 0 {
		return fmt.Errorf("%w: --count must be ≥ 0, got %d", errUsage, *count)
	}
	if *rate < 0 {
		return fmt.Errorf("%w: --rate must be ≥ 0, got %v", errUsage, *rate)
	}
	if *truth != "" && *count == 0 {
		return fmt.Errorf("%w: --truth needs a bounded stream: set --count", errUsage)
	}
	if *out == "" {
		return fmt.Errorf("%w: --out is empty: give a file or - for stdout", errUsage)
	}
	g, err := clickgen.New(cfg)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}

	var w io.Writer = env.stdout
	if *out != "-" {
		flags := os.O_WRONLY | os.O_CREATE | os.O_APPEND
		if !*appendOut {
			flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
		}
		f, err := os.OpenFile(*out, flags, 0o644)
		if err != nil {
			return fmt.Errorf("open --out: %w", err)
		}
		defer f.Close()
		w = f
	}
	began := time.Now()
	n, err := clickgen.Run(ctx, g, clickgen.NewWriterSink(w), clickgen.RunOptions{Count: *count, Rate: *rate})
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
		"first_event_time", cfg.Start.UTC().Format(time.RFC3339Nano), "seed", *seed)
	if t := g.Truth(); t != nil {
		if err := t.WriteFile(*truth); err != nil {
			return err
		}
		env.log.Info("truth", "file", *truth, "counts", t.Counts)
	}
	return nil
}
