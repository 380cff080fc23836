package main

import (
	"bytes"
	"context"
	"errors"
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
var errThreshold = errors.New("relative difference above the threshold")

// runReconcile recounts a range from raw data and compares it with the
// stored results.
func runReconcile(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "reconcile")
	var (
		sf          storeOptions
		rf          rangeFlags
		ao          aggOptions
		threshold   string
		repair      bool
		allowOpen   bool
		reportPath  string
		metricsPath string
		top         int
		shards      int
		chunk       time.Duration
	)
	sf.register(fs, "store")
	rf.register(fs)
	ao.register(fs)
	fs.StringVar(&threshold, "threshold", "0.1%", "largest tolerated relative difference: a percentage (0.1%) or a fraction (0.001)")
	fs.BoolVar(&repair, "repair", false, "replay the minute ranges of the mismatched keys (their counts, and the top lists of every window that sums one of them, up to the longest window - 1 min after the range), then check again")
	fs.BoolVar(&allowOpen, "allow-open-minutes", false, "with --repair, replay minutes younger than the allowed lateness (6 min) too, and rewrite the top lists of window ends that young")
	fs.StringVar(&reportPath, "report", "", "write the JSON report to this file (- for standard output, after the summary)")
	fs.StringVar(&metricsPath, "metrics-file", "", "write the run's figures as Prometheus gauges to this file (textfile-collector format)")
	fs.IntVar(&top, "top", 20, "how many of the largest differences the summary lists")
	fs.IntVar(&shards, "read-shards", 16, "parallel shards of the raw read")
	fs.DurationVar(&chunk, "chunk", pipelines.DefaultReconcileChunk, "recount and compare this much of the range at a time (whole minutes): bounds memory")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: adclick reconcile --from T --to T [flags]

Recounts the minutes [from, to) from the raw store (the same aggregation as
the streaming job, in batch), compares every (ad, minute) and (ad, minute,
filter) count the store serves with the recount, prints a summary (totals,
mismatched keys, largest differences) and optionally writes a JSON report and
Prometheus metrics. The relative difference is Σ|recounted − stored| /
Σ recounted, for counts and filtered counts separately; the larger counts.

Exit codes: 0 within the threshold (after the repair, with --repair);
%d above it; 1 an error; 2 a usage error.

`, exitThreshold)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, env, args); err != nil {
		return err
	}
	cfg, err := sf.config("store")
	if err != nil {
		return err
	}
	from, to, err := rf.parse()
	if err != nil {
		return err
	}
	tcfg, err := ao.config()
	if err != nil {
		return err
	}
	th, err := parseThreshold(threshold)
	if err != nil {
		return fmt.Errorf("%w: --threshold: %v", errUsage, err)
	}
	if top < 0 {
		return fmt.Errorf("%w: --top must not be negative", errUsage)
	}
	if shards < 1 || shards > 4096 {
		return fmt.Errorf("%w: --read-shards %d must be between 1 and 4096", errUsage, shards)
	}
	if chunk < time.Minute || chunk%time.Minute != 0 {
		return fmt.Errorf("%w: --chunk %v must be a positive whole number of minutes", errUsage, chunk)
	}
	now := time.Now()
	if repair {
		if err := replayadmin.CheckSettled(to, allowOpen, now); err != nil {
			return fmt.Errorf("%w: --repair: %v", errUsage, err)
		}
	}
	for _, p := range []string{reportPath, metricsPath} {
		if p != "" && p != "-" {
			if _, err := os.Stat(filepath.Dir(p)); err != nil {
				return fmt.Errorf("%w: %s: %v", errUsage, p, err)
			}
		}
	}

	rep, err := pipelines.Reconcile(ctx, pipelines.ReconcileOptions{Store: cfg, From: from, To: to, Config: tcfg,
		Threshold: th, Repair: repair, OpenFrom: replayadmin.OpenFrom(allowOpen, now), Chunk: chunk, Runner: runners.Options{Runner: ao.runner},
		Read: storeio.ReadOptions{Shards: shards}, Logger: env.log})
	if err != nil {
		return err
	}
	if err := rep.WriteSummary(env.stdout, top); err != nil {
		return err
	}
	switch reportPath {
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
		if err := atomicfile.Write(reportPath, buf.Bytes()); err != nil {
			return fmt.Errorf("writing the report: %w", err)
		}
	}
	if metricsPath != "" {
		if err := prometheus.WriteToTextfile(metricsPath, rep.Metrics()); err != nil {
			return fmt.Errorf("writing the metrics: %w", err)
		}
	}
	if rep.ExceedsThreshold {
		return errThreshold
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
