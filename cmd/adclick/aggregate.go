package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/io/storeio"
	"github.com/adclick/adclick/pipelines"
	"github.com/adclick/adclick/runners"
	"github.com/adclick/adclick/transforms"
)

func runAggregate(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "aggregate")
	var o aggregateOptions
	o.register(fs)
	if err := parseFlags(fs, env, args); err != nil {
		return err
	}
	if err := o.validate(fs); err != nil {
		return err
	}
	cfg, err := o.agg.config()
	if err != nil {
		return err
	}
	if o.fromStore {
		return aggregateStore(ctx, env, &o.store, &o.rng, cfg, o.agg.runner, o.output)
	}
	return aggregateFile(ctx, env, &o, cfg)
}

// aggregateOptions are the flags of adclick aggregate.
type aggregateOptions struct {
	input, output, dead string
	progressEvery       time.Duration
	agg                 aggOptions
	store               storeOptions
	rng                 rangeFlags
	fromStore           bool // --from-store was given (set by validate)
}

func (o *aggregateOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.input, "input", "", "JSON-lines click log to recount, or - for standard input (this or --from-store)")
	o.store.register(fs, "from-store")
	o.rng.register(fs)
	fs.StringVar(&o.output, "output", "-", "where to write result records (JSON lines), - for standard output")
	fs.StringVar(&o.dead, "dead-letters", "", "optional file for rejected lines with their reasons (JSON lines)")
	fs.DurationVar(&o.progressEvery, "progress-interval", 10*time.Second, "when stderr is not a terminal, log lines read, rate and ETA this often (on a terminal a progress line is redrawn every second); 0 turns progress off")
	o.agg.register(fs)
	fs.Lookup("from-store").Usage = "recount the raw clicks of [--from, --to) from this store instead of a file: pebble or cassandra (see --pebble-dir, --cassandra-hosts)"
}

// validate checks the flags fs parsed: a file or a stored range, not both.
func (o *aggregateOptions) validate(fs *flag.FlagSet) error {
	fs.Visit(func(f *flag.Flag) { o.fromStore = o.fromStore || f.Name == "from-store" })
	if o.fromStore && o.input != "" {
		return fmt.Errorf("%w: --input and --from-store are mutually exclusive", errUsage)
	}
	if !o.fromStore && (o.rng.from != "" || o.rng.to != "") {
		return fmt.Errorf("%w: --from and --to need --from-store", errUsage)
	}
	if !o.fromStore && o.input == "" {
		return fmt.Errorf("%w: --input is required (or --from-store with --from and --to)", errUsage)
	}
	if o.progressEvery < 0 {
		return fmt.Errorf("%w: --progress-interval must not be negative", errUsage)
	}
	return nil
}

// aggregateFile is aggregate --input: the batch composite over a click log
// file or standard input.
func aggregateFile(ctx context.Context, env *cliEnv, o *aggregateOptions, cfg transforms.Config) error {
	tmp, err := os.MkdirTemp("", "adclick-aggregate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	src, size, closeSrc, err := openAggregateInput(env, o.input)
	if err != nil {
		return err
	}
	defer closeSrc()
	// The pipeline reads files by path. It is given a named pipe that this
	// command fills from the input through a counter: that is how far the
	// pipeline has read, observed without touching the pipeline, and
	// standard input needs no copy on disk. Without progress it reads the
	// file itself, as before.
	input := o.input
	var inputDone func() error
	var stopProgress func()
	if o.progressEvery > 0 {
		pr := newProgress("aggregate", size, time.Now)
		if input, inputDone, err = feedFIFO(tmp, src, pr); err != nil {
			return err
		}
		stopProgress = pr.report(ctx, env.stderr, env.log, o.progressEvery)
	} else if input == "-" {
		input = filepath.Join(tmp, "stdin.jsonl")
		if err := spool(env.stdin, input); err != nil {
			return fmt.Errorf("reading standard input: %w", err)
		}
	}
	outPath := o.output
	if o.output == "-" {
		outPath = filepath.Join(tmp, "out.jsonl")
	}

	counters, err := pipelines.RunRecountFiles(ctx, []string{input}, cfg, outPath, o.dead, runners.Options{Runner: o.agg.runner})
	if inputDone != nil {
		// A failed read of the input ends the pipe early, which the
		// pipeline takes for the end of a shorter input: fail then too.
		ierr := inputDone()
		stopProgress()
		if err == nil && ierr != nil {
			return fmt.Errorf("reading the input: %w (the results, if written, are of part of it)", ierr)
		}
	}
	if err != nil {
		return fmt.Errorf("pipeline failed: %w", err)
	}
	if o.output == "-" {
		if err := copyFile(env.stdout, outPath); err != nil {
			return err
		}
	}
	printSummary(env.stderr, counters)
	return nil
}

// openAggregateInput opens --input: standard input for -, else the file,
// with its size when it is a regular file (0: unknown, so no percentage and
// no ETA).
func openAggregateInput(env *cliEnv, input string) (src io.Reader, size int64, closeSrc func(), err error) {
	if input == "-" {
		return env.stdin, 0, func() {}, nil
	}
	f, err := os.Open(input)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("%w: --input: %v", errUsage, err)
	}
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	return f, size, func() { f.Close() }, nil
}

// aggregateStore is aggregate --from-store: the batch composite over the raw
// clicks of [--from, --to) read from a store.
func aggregateStore(ctx context.Context, env *cliEnv, so *storeOptions, rf *rangeFlags, cfg transforms.Config, runner, output string) error {
	sc, err := so.config(env, "from-store")
	if err != nil {
		return err
	}
	from, to, err := rf.parse()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "adclick-aggregate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	outPath := output
	if output == "-" {
		outPath = filepath.Join(tmp, "out.jsonl")
	}
	if err := pipelines.CheckRange(from, to); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	read, err := pipelines.RunRecountStore(ctx, sc, from, to, cfg, storeio.ReadOptions{}, outPath, runners.Options{Runner: runner})
	if err != nil {
		return fmt.Errorf("pipeline failed: %w", err)
	}
	if output == "-" {
		if err := copyFile(env.stdout, outPath); err != nil {
			return err
		}
	}
	fmt.Fprintf(env.stderr, "raw_clicks_read=%d\n", read)
	return nil
}

// printSummary writes the line accounting: every line is valid, a duplicate
// or rejected with a reason.
func printSummary(w io.Writer, c map[string]int64) {
	var rejected int64
	var reasons []string
	for _, r := range click.Reasons {
		if n := c[transforms.MetricRejected+string(r)]; n > 0 {
			rejected += n
			reasons = append(reasons, fmt.Sprintf("%s=%d", r, n))
		}
	}
	sort.Strings(reasons)
	fmt.Fprintf(w, "lines=%d unique_clicks=%d duplicates=%d too_late=%d rejected=%d\n",
		c[transforms.MetricClicksIn], c[transforms.MetricValid], c[transforms.MetricDuplicates], c[transforms.MetricTooLate], rejected)
	if len(reasons) > 0 {
		fmt.Fprintf(w, "rejected by reason: %s\n", strings.Join(reasons, " "))
	}
}

func spool(r io.Reader, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func copyFile(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}
