//go:build linux

package portable_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/pipelines"
	"github.com/adclick/adclick/testing/clickgen"
	"github.com/adclick/adclick/testing/reference"
	"github.com/adclick/adclick/transforms"
)

// TestRecountPortable runs the bounded recount of a click log through the
// portable path: runners.Run with --runner flink's options, to a job service
// in another process whose workers run in processes of their own. The
// production aggregation settings (windows of 1, 5, 15 and 60 minutes, top
// 100) over 75 minutes of event time with duplicates, late, too-late and
// malformed lines must give exactly the reference recount, and the line
// accounting the counters report must add up.
func TestRecountPortable(t *testing.T) {
	ro := startJobService(t)
	dir := t.TempDir()
	n := 30000
	lines, _, err := clickgen.Lines(n, clickgen.Config{Seed: 13, Ads: 400, Start: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC),
		EventRate: float64(n) / (75 * 60), DupShare: 0.05, LateShare: 0.05, TooLateShare: 0.02, MalformedShare: 0.02})
	if err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(dir, "clicks.jsonl")
	if err := os.WriteFile(in, append(bytes.Join(lines, []byte("\n")), '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := transforms.DefaultConfig()
	want := reference.Recount(lines, cfg.WindowSizes, cfg.TopN, nil)
	if want.Rejected == 0 || want.Dups == 0 || len(want.Top) == 0 {
		t.Fatalf("the log lacks malformed (%d) or duplicate (%d) lines or top lists (%d): the test would check less than it says",
			want.Rejected, want.Dups, len(want.Top))
	}

	out, dead := filepath.Join(dir, "results.jsonl"), filepath.Join(dir, "dead.jsonl")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	began := time.Now()
	counters, err := pipelines.RunRecountFiles(ctx, []string{in}, cfg, out, dead, ro)
	if err != nil {
		t.Fatalf("recount through the job service at %s: %v", ro.Endpoint, err)
	}
	t.Logf("recount of %d lines through the job service: %v", n, time.Since(began).Round(time.Millisecond))

	reference.Compare(t, reference.Finals(readRecords(t, out), cfg.TopN), want)
	if got := countLines(t, dead); got != want.Rejected {
		t.Errorf("dead letters = %d, want %d", got, want.Rejected)
	}
	var rejected int64
	for _, r := range click.Reasons {
		rejected += counters[transforms.MetricRejected+string(r)]
	}
	if counters[transforms.MetricClicksIn] != int64(n) || rejected != int64(want.Rejected) {
		t.Errorf("counters: %s=%d rejected=%d, want %d and %d (all: %v)",
			transforms.MetricClicksIn, counters[transforms.MetricClicksIn], rejected, n, want.Rejected, counters)
	}
}
