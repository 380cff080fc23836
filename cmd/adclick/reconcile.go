package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/adclick/adclick/io/atomicfile"
	"github.com/adclick/adclick/io/storeio"
	"github.com/adclick/adclick/pipelines"
	"github.com/adclick/adclick/runners"
	"github.com/adclick/adclick/services/replayadmin"
)

// exitThreshold is reconcile's exit code when the difference exceeds the
// threshold (1 is an error, 2 a usage error).
const exitThreshold = 3

// errThreshold makes run exit with exitThreshold.
var errThreshold = errors.New("relative difference above the threshold, or digests differ")

// runReconcile recounts a range from raw data and compares it with the
// stored results.
func runReconcile(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "reconcile")
	var o reconcileOptions
	o.register(fs)
	if err := parseFlags(fs, env, args); err != nil {
		return err
	}
	opts, err := o.options(env)
	if err != nil {
		return err
	}
	stopProgress := startStoreReadProgress(ctx, env, "reconcile", o.progressEvery, &opts.Runner)
	rep, err := pipelines.Reconcile(ctx, opts)
	stopProgress()
	if err != nil {
		return err
	}
	if err := o.write(env, rep); err != nil {
		return err
	}
	if rep.ExceedsThreshold {
		return errThreshold
	}
	return nil
}

// reconcileOptions are reconcile's flags.
type reconcileOptions struct {
	sf                      storeOptions
	rf                      rangeFlags
	ao                      aggOptions
	threshold               string
	repair, allowOpen       bool
	reportPath, metricsPath string
	top, shards             int
	chunk, progressEvery    time.Duration
}

func (o *reconcileOptions) register(fs *flag.FlagSet) {
	o.sf.register(fs, "store")
	o.rf.register(fs)
	o.ao.register(fs)
	fs.StringVar(&o.threshold, "threshold", "0.1%", "largest tolerated relative difference: a percentage (0.1%) or a fraction (0.001)")
	fs.BoolVar(&o.repair, "repair", false, "replay the minute ranges of the mismatched keys (their counts, and the top lists of every window that sums one of them, up to the longest window - 1 min after the range), then check again")
	fs.BoolVar(&o.allowOpen, "allow-open-minutes", false, "with --repair, replay minutes younger than the allowed lateness (6 min) too, and rewrite the top lists of window ends that young")
	fs.StringVar(&o.reportPath, "report", "", "write the JSON report to this file (- for standard output, after the summary)")
	fs.StringVar(&o.metricsPath, "metrics-file", "", "write the run's figures as Prometheus gauges to this file (textfile-collector format)")
	fs.IntVar(&o.top, "top", 20, "how many of the largest differences the summary lists")
	fs.IntVar(&o.shards, "read-shards", 16, "parallel shards of the raw read")
	fs.DurationVar(&o.chunk, "chunk", pipelines.DefaultReconcileChunk, "recount and compare this much of the range at a time (whole minutes): bounds memory")
	o.progressEvery = 10 * time.Second
	fs.DurationVar(&o.progressEvery, "progress-interval", o.progressEvery, "when stderr is not a terminal, log clicks read and rate this often (on a terminal a progress line is redrawn every second); 0 turns progress off")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: adclick reconcile --from T --to T [flags]

Recounts the minutes [from, to) from the raw store (the same aggregation as
the streaming job, in batch), compares every (ad, minute) and (ad, minute,
filter) count the store serves with the recount, prints a summary (totals,
mismatched keys, largest differences) and optionally writes a JSON report and
Prometheus metrics. The relative difference is Σ|recounted − stored| /
Σ recounted, for counts and filtered counts separately; the larger counts.
Digests are compared too: a key whose counts agree but whose digests differ
counted different clicks, and is a mismatch whatever the threshold (keys
stored before digests existed are compared by count only).

Exit codes: 0 within the threshold and no digest differs (after the repair,
with --repair); %d otherwise; 1 an error; 2 a usage error.

`, exitThreshold)
		fs.PrintDefaults()
	}
}

// options checks the flags and builds the run's options.
func (o *reconcileOptions) options(env *cliEnv) (pipelines.ReconcileOptions, error) {
	var none pipelines.ReconcileOptions
	cfg, err := o.sf.config(env, "store")
	if err != nil {
		return none, err
	}
	from, to, err := o.rf.parse()
	if err != nil {
		return none, err
	}
	tcfg, err := o.ao.config()
	if err != nil {
		return none, err
	}
	th, err := parseThreshold(o.threshold)
	if err != nil {
		return none, fmt.Errorf("%w: --threshold: %v", errUsage, err)
	}
	switch {
	case o.top < 0:
		return none, fmt.Errorf("%w: --top must not be negative", errUsage)
	case o.shards < 1 || o.shards > 4096:
		return none, fmt.Errorf("%w: --read-shards %d must be between 1 and 4096", errUsage, o.shards)
	case o.chunk < time.Minute || o.chunk%time.Minute != 0:
		return none, fmt.Errorf("%w: --chunk %v must be a positive whole number of minutes", errUsage, o.chunk)
	case o.progressEvery < 0:
		return none, fmt.Errorf("%w: --progress-interval must not be negative", errUsage)
	}
	now := time.Now()
	if o.repair {
		if err := replayadmin.CheckSettled(to, o.allowOpen, now); err != nil {
			return none, fmt.Errorf("%w: --repair: %v", errUsage, err)
		}
	}
	for _, p := range []string{o.reportPath, o.metricsPath} {
		if p != "" && p != "-" {
			if _, err := os.Stat(filepath.Dir(p)); err != nil {
				return none, fmt.Errorf("%w: %s: %v", errUsage, p, err)
			}
		}
	}
	return pipelines.ReconcileOptions{Store: cfg, From: from, To: to, Config: tcfg,
		Threshold: th, Repair: o.repair, OpenFrom: replayadmin.OpenFrom(o.allowOpen, now), Chunk: o.chunk, Runner: runners.Options{Runner: o.ao.runner},
		Read: storeio.ReadOptions{Shards: o.shards}, Logger: env.log}, nil
}

// write prints the summary and writes the report and the metrics file.
func (o *reconcileOptions) write(env *cliEnv, rep *pipelines.Report) error {
	if err := rep.WriteSummary(env.stdout, o.top); err != nil {
		return err
	}
	switch o.reportPath {
	case "":
	case "-":
		if err := rep.WriteJSON(env.stdout); err != nil {
			return err
		}
	default:
		var buf bytes.Buffer
		if err := rep.WriteJSON(&buf); err != nil {
			return fmt.Errorf("report: %w", err)
		}
		if err := atomicfile.Write(o.reportPath, buf.Bytes()); err != nil {
			return fmt.Errorf("writing the report: %w", err)
		}
	}
	if o.metricsPath != "" {
		if err := prometheus.WriteToTextfile(o.metricsPath, rep.Metrics()); err != nil {
			return fmt.Errorf("writing the metrics: %w", err)
		}
	}
	return nil
}

// parseThreshold reads "0.1%" or "0.001".
func parseThreshold(s string) (float64, error) {
	s = strings.TrimSpace(s)
	scale := 1.0
	if strings.HasSuffix(s, "%") {
		s, scale = strings.TrimSpace(strings.TrimSuffix(s, "%")), 0.01
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	v *= scale
	if !(v >= 0 && v <= 1) {
		return 0, fmt.Errorf("%v must be between 0 and 100%%", v)
	}
	return v, nil
}
