package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/io/store/backend"
	"github.com/adclick/adclick/pipelines"
	"github.com/adclick/adclick/queryapi"
	"github.com/adclick/adclick/services/replayadmin"
	"github.com/adclick/adclick/testing/e2e"
)

// rawStore writes the valid clicks of testdata/clicks.jsonl into a fresh
// Pebble directory and returns it with the whole minutes covering them.
func rawStore(t *testing.T) (dir string, from, to time.Time, st store.Store) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "clicks.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	return e2e.RawPebble(t, bytes.Split(b, []byte("\n")))
}

// TestAggregateFromStore: raw clicks written to the store and recounted with
// --from-store give the same records as recounting the original file.
func TestAggregateFromStore(t *testing.T) {
	dir, from, to, _ := rawStore(t)
	env, out, stderr := testEnv("")
	if code := run(context.Background(), []string{"aggregate", "--input", filepath.Join("testdata", "clicks.jsonl")}, env); code != 0 {
		t.Fatalf("aggregate --input: exit %d: %s", code, stderr)
	}
	want := sortedLines(out.Bytes())
	env, out, stderr = testEnv("")
	if code := run(context.Background(), []string{"aggregate", "--from-store", "pebble", "--pebble-dir", dir,
		"--from", from.Format(time.RFC3339), "--to", to.Format("2006-01-02T15:04")}, env); code != 0 {
		t.Fatalf("aggregate --from-store: exit %d: %s", code, stderr)
	}
	if got := sortedLines(out.Bytes()); !reflect.DeepEqual(got, want) {
		t.Errorf("--from-store output (%d lines) differs from the file recount (%d lines)", len(got), len(want))
	}
}

func TestAggregateFromStoreUsage(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"both sources", []string{"--input", "x", "--from-store", "pebble", "--pebble-dir", dir, "--from", "2024-01-01T10:00", "--to", "2024-01-01T11:00"}, "mutually exclusive"},
		{"range without store", []string{"--input", "x", "--from", "2024-01-01T10:00"}, "need --from-store"},
		{"no range", []string{"--from-store", "pebble", "--pebble-dir", dir}, "--from and --to are required"},
		{"bad store", []string{"--from-store", "mysql", "--from", "2024-01-01T10:00", "--to", "2024-01-01T11:00"}, "unknown store backend"},
		{"cassandra without hosts", []string{"--from-store", "cassandra", "--from", "2024-01-01T10:00", "--to", "2024-01-01T11:00"}, "needs hosts"},
		{"not a minute", []string{"--from-store", "pebble", "--pebble-dir", dir, "--from", "2024-01-01T10:00:30Z", "--to", "2024-01-01T11:00"}, "whole minute"},
		{"reversed", []string{"--from-store", "pebble", "--pebble-dir", dir, "--from", "2024-01-01T11:00", "--to", "2024-01-01T10:00"}, "must be before"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, _, stderr := testEnv("")
			if code := run(context.Background(), append([]string{"aggregate"}, tc.args...), env); code != 2 {
				t.Fatalf("exit %d, want 2: %s", code, stderr)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr %q lacks %q", stderr, tc.want)
			}
		})
	}
}

func TestReplayReconcileUsage(t *testing.T) {
	dir := t.TempDir()
	recent := time.Now().Truncate(time.Minute)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"replay without range", []string{"replay", "--pebble-dir", dir}, "--from and --to are required"},
		{"replay bad time", []string{"replay", "--pebble-dir", dir, "--from", "soon", "--to", "2024-01-01T10:00"}, "--from"},
		{"replay open minutes", []string{"replay", "--pebble-dir", dir, "--from", recent.Add(-time.Hour).Format(time.RFC3339), "--to", recent.Format(time.RFC3339)}, "--allow-open-minutes"},
		{"replay bad runner", []string{"replay", "--pebble-dir", dir, "--from", "2024-01-01T10:00", "--to", "2024-01-01T11:00", "--runner", "flink"}, "prism or direct"},
		{"reconcile bad threshold", []string{"reconcile", "--pebble-dir", dir, "--from", "2024-01-01T10:00", "--to", "2024-01-01T11:00", "--threshold", "5x"}, "--threshold"},
		{"reconcile threshold above 100%", []string{"reconcile", "--pebble-dir", dir, "--from", "2024-01-01T10:00", "--to", "2024-01-01T11:00", "--threshold", "150%"}, "--threshold"},
		{"reconcile bad chunk", []string{"reconcile", "--pebble-dir", dir, "--from", "2024-01-01T10:00", "--to", "2024-01-01T11:00", "--chunk", "30s"}, "--chunk"},
		{"reconcile report in a missing dir", []string{"reconcile", "--pebble-dir", dir, "--from", "2024-01-01T10:00", "--to", "2024-01-01T11:00", "--report", "/nonexistent/r.json"}, "nonexistent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, _, stderr := testEnv("")
			if code := run(context.Background(), tc.args, env); code != 2 {
				t.Fatalf("exit %d, want 2: %s", code, stderr)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr %q lacks %q", stderr, tc.want)
			}
		})
	}
}

// TestReconcileCLI: with wrong stored results, reconcile exits 3 and writes
// the report and metrics; --repair fixes them (exit 0); a replay prints its
// result and changes nothing more.
func TestReconcileCLI(t *testing.T) {
	dir, from, to, st := rawStore(t)
	ctx := context.Background()
	// The real-time results: the recount of the raw clicks, then two keys
	// damaged — one count too high, one invented filter.
	res, err := pipelines.Replay(ctx, pipelines.ReplayOptions{Store: backend.Config{Backend: backend.Pebble, Path: dir}, From: from, To: to, Config: replayadmin.Config([]int{1, 5}, 10)})
	if err != nil {
		t.Fatal(err)
	}
	var first result.Count
	if err := st.ScanCounts(ctx, from.Unix(), to.Unix(), func(r result.Record) error {
		if r.Count != nil && first.AdID == "" {
			first = *r.Count
		}
		return nil
	}); err != nil || first.AdID == "" {
		t.Fatalf("no stored count after the replay: %v", err)
	}
	gen, err := st.NewGeneration(ctx, from.Unix(), to.Unix(), to.Unix())
	if err != nil {
		t.Fatal(err)
	}
	var recs []result.Record
	if err := st.ScanCounts(ctx, from.Unix(), to.Unix(), func(r result.Record) error {
		if r.Count != nil && *r.Count == first {
			r.Count.Count += 7
		}
		recs = append(recs, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	recs = append(recs, result.Record{Filtered: &result.FilteredCount{AdID: first.AdID, FilterID: "country:UK", Minute: first.Minute, Count: 2}})
	if err := st.Upsert(ctx, gen, recs); err != nil {
		t.Fatal(err)
	}
	if err := st.CommitGeneration(ctx, gen); err != nil || gen == res.Generation {
		t.Fatal(err)
	}

	out := t.TempDir()
	args := []string{"reconcile", "--pebble-dir", dir, "--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339),
		"--window-sizes", "1,5", "--top-n", "10", "--report", filepath.Join(out, "report.json"), "--metrics-file", filepath.Join(out, "reconcile.prom")}
	env, stdout, stderr := testEnv("")
	if code := run(ctx, args, env); code != exitThreshold {
		t.Fatalf("reconcile of damaged results: exit %d, want %d: %s", code, exitThreshold, stderr)
	}
	var rep pipelines.Report
	b, err := os.ReadFile(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Check.Mismatches) != 2 || rep.Check.Counts.Difference != -7 || rep.Check.Filtered.Difference != -2 || !rep.ExceedsThreshold {
		t.Errorf("report: %d mismatches %+v, count difference %d, filtered %d, exceeds %v; want the 2 damaged keys, -7 and -2",
			len(rep.Check.Mismatches), rep.Check.Mismatches, rep.Check.Counts.Difference, rep.Check.Filtered.Difference, rep.ExceedsThreshold)
	}
	if !strings.Contains(stdout.String(), "FAIL: exceeds the threshold of 0.1%") || !strings.Contains(stdout.String(), "country:UK") {
		t.Errorf("summary:\n%s", stdout)
	}
	prom, err := os.ReadFile(filepath.Join(out, "reconcile.prom"))
	if err != nil || !strings.Contains(string(prom), `adclick_reconcile_mismatched_keys{kind="filtered"} 1`) {
		t.Errorf("metrics file (%v):\n%s", err, prom)
	}

	env, stdout, stderr = testEnv("")
	if code := run(ctx, append(args, "--repair"), env); code != 0 {
		t.Fatalf("reconcile --repair: exit %d: %s\n%s", code, stderr, stdout)
	}
	if !strings.Contains(stdout.String(), "after repair: counts") || !strings.Contains(stdout.String(), "OK: within") {
		t.Errorf("repair summary:\n%s", stdout)
	}
	env, stdout, stderr = testEnv("")
	if code := run(ctx, args[:7], env); code != 0 {
		t.Fatalf("reconcile after the repair: exit %d: %s\n%s", code, stderr, stdout)
	}

	env, stdout, stderr = testEnv("")
	if code := run(ctx, []string{"replay", "--pebble-dir", dir, "--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339), "--window-sizes", "1,5", "--top-n", "10"}, env); code != 0 {
		t.Fatalf("replay: exit %d: %s", code, stderr)
	}
	var rr pipelines.ReplayResult
	if err := json.Unmarshal(stdout.Bytes(), &rr); err != nil || rr.Generation <= gen || rr.ClicksRead == 0 {
		t.Errorf("replay printed %q (%v), want a result with a new generation", stdout, err)
	}
	env, _, stderr = testEnv("")
	if code := run(ctx, args[:7], env); code != 0 {
		t.Fatalf("reconcile after a second replay: exit %d: %s", code, stderr)
	}
}

// TestServeAdminReplay: POST /admin/replay on a running `adclick serve`
// replays the range in the server's process (which holds the embedded store
// open), GET /admin/replay/{id} reports it done, and the API then serves the
// recounted values.
func TestServeAdminReplay(t *testing.T) {
	dir, from, to, st := rawStore(t)
	want := map[string]bool{}
	shards, err := st.RawShards(context.Background(), from, to, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range shards {
		if err := st.ReadRaw(context.Background(), sh, func(c click.Click) error {
			if c.AdID == "ad1" {
				want[c.EventID] = true
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if len(want) == 0 {
		t.Fatal("testdata has no click of ad1")
	}
	srv := startBackground(t, map[string]string{"ADCLICK_TOKENS": "ops:admin:admin-token-0123456789"}, "serve", "--pebble-dir", dir)
	base, errb := srv.base, srv.errb
	call := func(method, path string, v any) int { return adminCall(base, method, path, v) }
	for i := 0; i < 600 && call("GET", "/readyz", nil) != 200; i++ {
		time.Sleep(50 * time.Millisecond)
	}
	q := "?from=" + from.Format("2006-01-02T15:04") + "&to=" + to.Format("2006-01-02T15:04")
	var job queryapi.ReplayJob
	if code := call("POST", "/admin/replay"+q, &job); code != http.StatusAccepted || job.ID == "" {
		t.Fatalf("POST /admin/replay: %d %+v: %s", code, job, errb.String())
	}
	for i := 0; i < 600 && job.State == "running"; i++ {
		time.Sleep(50 * time.Millisecond)
		if code := call("GET", "/admin/replay/"+job.ID, &job); code != 200 {
			t.Fatalf("GET /admin/replay/%s: %d", job.ID, code)
		}
	}
	if job.State != "done" {
		t.Fatalf("replay job %+v: %s", job, errb.String())
	}
	var got struct{ Count int64 }
	if code := call("GET", "/ads/ad1/aggregated_count"+q, &got); code != 200 || got.Count != int64(len(want)) {
		t.Errorf("after the replay: %d, count %d; want %d", code, got.Count, len(want))
	}
	if code := srv.stop(t); code != 0 {
		t.Errorf("serve: exit %d", code)
	}
}
