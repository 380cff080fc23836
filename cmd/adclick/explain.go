package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/io/store/backend"
	"github.com/adclick/adclick/queryapi"
	"github.com/adclick/adclick/services/explain"
)

// errMismatch makes run exit with exitThreshold (3), as reconcile does: the
// recount differs from what is stored in some minute.
var errMismatch = errors.New("the recount differs from the stored values")

// runExplain lists the clicks behind a stored count (billing disputes).
func runExplain(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "explain")
	var o explainOptions
	o.register(fs)
	if err := parseFlags(fs, env, args); err != nil {
		return err
	}
	cfg, eo, err := o.options(env)
	if err != nil {
		return err
	}
	st, err := backend.Open(ctx, cfg, nil)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer st.Close()
	es, ok := st.(explain.Store)
	if !ok {
		return fmt.Errorf("the %s store cannot explain (no digests or generation map)", cfg.Backend)
	}
	eo.Store = es
	eo.TooLate = explain.StoreTooLate(st) // the streaming job's recorded too-late clicks
	ex, err := explain.New(ctx, eo)
	if err != nil {
		return usageIfInvalid(err)
	}
	tot, err := o.write(ctx, env, ex)
	if err != nil {
		return err
	}
	env.log.Info("explain done", "ad_id", tot.AdID, "count", tot.Count, "stored_count", tot.StoredCount,
		"too_late", tot.TooLate, "verdict", tot.Verdict, "mismatched", len(tot.Mismatched), "unexplained", len(tot.Unexplained))
	if tot.Verdict != explain.Match {
		return errMismatch
	}
	return nil
}

// usageIfInvalid makes an argument the store or explain refused a usage error.
func usageIfInvalid(err error) error {
	if errors.Is(err, explain.ErrInvalid) {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return err
}

// explainOptions are explain's flags.
type explainOptions struct {
	sf                             storeOptions
	rf                             rangeFlags
	ad, filter, format, outputPath string
}

func (o *explainOptions) register(fs *flag.FlagSet) {
	o.sf.register(fs, "store")
	o.rf.register(fs)
	fs.StringVar(&o.ad, "ad", "", "the ad whose clicks to list (required)")
	fs.StringVar(&o.filter, "filter", "", "explain a filtered count: country:VALUE, device:VALUE or format:VALUE (default: the ad's count)")
	fs.StringVar(&o.format, "format", "text", "output: text (for a person), jsonl or csv (the export handed to an advertiser)")
	fs.StringVar(&o.outputPath, "output", "", "write to this file (complete or not at all: written beside it and renamed at the end); default standard output")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: adclick explain --ad X --from T --to T [--filter F] [--format text|jsonl|csv] [--output FILE] [store flags]

Shows the clicks behind the count of one ad (or one of its filtered counts)
over the minutes [from, to), for billing disputes. It reads the raw clicks,
applies the aggregation's rules per minute (one click per event id, the copy
with the smallest country, device, ad_format deciding the filters) and lists
every raw click as counted or not counted with the reason (duplicate of
<event_id>; too late). For every minute and in total it puts the recomputed
count and digest beside the stored ones and says match or MISMATCH, naming
the minutes that differ. Memory holds one minute of the ad's clicks.

Too-late clicks: minutes a replay recounted count them, like explain. Minutes
the streaming job wrote (generation 0) left them out, and the job records
which ("too late (recorded)"). Where a minute has no such record (written
before the job recorded them) and differs by one or two clicks, the digests
identify them ("not counted in real time (too late)": the digests prove which
clicks the stored count lacks, the reason is inferred); a larger difference is
reported as unexplained, never as a match.

Export (jsonl, csv): per minute, one row per counted click (event_id,
event_time in RFC 3339 UTC with milliseconds, ad_id, country, device,
ad_format, user_id, ip), then the not-counted rows with a reason, then the
minute's summary; the total last. The status column (field) tells them apart:
counted, not_counted, minute, total. See docs/spec.md §6.

Exit codes: 0 every minute matches; %d a minute differs (mismatch or
unexplained); 1 an error; 2 a usage error.

`, exitThreshold)
		fs.PrintDefaults()
	}
}

// options checks the flags before anything is opened.
func (o *explainOptions) options(env *cliEnv) (backend.Config, explain.Options, error) {
	var none explain.Options
	cfg, err := o.sf.config(env, "store")
	if err != nil {
		return cfg, none, err
	}
	from, to, err := o.rf.parse()
	if err != nil {
		return cfg, none, err
	}
	switch {
	case o.ad == "":
		return cfg, none, fmt.Errorf("%w: --ad is required", errUsage)
	case !validFormat(o.format):
		return cfg, none, fmt.Errorf("%w: --format %q: use one of %s", errUsage, o.format, strings.Join(explain.Formats, ", "))
	}
	if o.outputPath != "" {
		if _, err := os.Stat(filepath.Dir(o.outputPath)); err != nil {
			return cfg, none, fmt.Errorf("%w: --output: %v", errUsage, err)
		}
	}
	eo := explain.Options{AdID: o.ad, FilterID: o.filter, From: from.Unix(), To: to.Unix()}
	// Checked before the store is opened: a bad ad or filter is a usage
	// error that touches nothing.
	if err := eo.Validate(); err != nil {
		return cfg, none, fmt.Errorf("%w: %v", errUsage, err)
	}
	return cfg, eo, nil
}

func validFormat(f string) bool {
	for _, x := range explain.Formats {
		if x == f {
			return true
		}
	}
	return false
}

// write runs the explanation into the output.
func (o *explainOptions) write(ctx context.Context, env *cliEnv, ex *explain.Explainer) (explain.Total, error) {
	if o.outputPath == "" {
		return export(ctx, env.stdout, o.format, ex)
	}
	f, err := os.CreateTemp(filepath.Dir(o.outputPath), "."+filepath.Base(o.outputPath)+".*")
	if err != nil {
		return explain.Total{}, fmt.Errorf("--output: %w", err)
	}
	defer os.Remove(f.Name()) // after the rename, a no-op
	tot, err := export(ctx, f, o.format, ex)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), o.outputPath)
	}
	if err != nil {
		return tot, fmt.Errorf("--output %s: %w", o.outputPath, err)
	}
	return tot, nil
}

func export(ctx context.Context, w io.Writer, format string, ex *explain.Explainer) (explain.Total, error) {
	e, err := explain.NewExporter(w, format)
	if err != nil {
		return explain.Total{}, err
	}
	tot, err := ex.Run(ctx, e.Minute)
	if err != nil {
		return tot, err
	}
	return tot, e.Total(&tot)
}

// clicksHook is the admin clicks endpoint's hook over st; nil (501) when the
// store cannot explain.
func clicksHook(st store.Store) queryapi.Clicks {
	if es, ok := st.(explain.Store); ok {
		return explain.Service{Store: es, TooLate: explain.StoreTooLate(st)}
	}
	return nil
}
