package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store/backend"
	"github.com/adclick/adclick/pipelines"
	"github.com/adclick/adclick/services/replayadmin"
)

// TestExplainCLI: after a replay of testdata/clicks.jsonl, explain lists
// ad1's unique valid clicks as counted (from the file, not from the store),
// an extra raw copy of e02 as its duplicate, and the minutes match (exit 0),
// in jsonl and in csv written to --output; once a generation serves a set
// with one click swapped (same count) it exits 3 naming the minute.
func TestExplainCLI(t *testing.T) {
	dir, from, to, st := rawStore(t)
	ctx := context.Background()
	if _, err := pipelines.Replay(ctx, pipelines.ReplayOptions{Store: backend.Config{Backend: backend.Pebble, Path: dir},
		From: from, To: to, Config: replayadmin.Config([]int{1}, 10)}); err != nil {
		t.Fatal(err)
	}
	// A later copy of e02 whose attributes lose the tie-break (ZZ > GB).
	dup := click.Click{EventID: "e02", AdID: "ad1", Time: 1704103206000, Country: "ZZ", Device: "desktop", AdFormat: "video"}
	if err := st.WriteRaw(ctx, []click.Click{dup}); err != nil {
		t.Fatal(err)
	}
	st.Close() // explain opens the directory itself
	args := []string{"explain", "--pebble-dir", dir, "--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339)}
	env, stdout, stderr := testEnv("")
	env.getenv = func(k string) string { return map[string]string{"ADCLICK_AD": "ad1", "ADCLICK_FORMAT": "jsonl"}[k] }
	if code := run(ctx, args, env); code != 0 {
		t.Fatalf("explain: exit %d: %s\n%s", code, stderr, stdout)
	}
	var counted, dups []string
	var last map[string]any
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		var row map[string]any
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		switch row["status"] {
		case "counted":
			counted = append(counted, row["event_id"].(string))
		case "not_counted":
			dups = append(dups, row["event_id"].(string)+": "+row["reason"].(string))
		}
		last = row
	}
	slices.Sort(counted)
	if want := []string{"e01", "e02", "e06", "e09", "e19"}; !slices.Equal(counted, want) {
		t.Errorf("counted %v, want %v", counted, want)
	}
	if !slices.Equal(dups, []string{"e02: duplicate of e02"}) {
		t.Errorf("not counted %v", dups)
	}
	if last["status"] != "total" || last["verdict"] != "match" || last["count"] != 5.0 || last["stored_count"] != 5.0 {
		t.Errorf("last line %v, want the total with verdict match", last)
	}

	out := filepath.Join(t.TempDir(), "ad1.csv")
	env, _, stderr = testEnv("")
	if code := run(ctx, append(args, "--ad", "ad1", "--format", "csv", "--output", out), env); code != 0 {
		t.Fatalf("explain --format csv: exit %d: %s", code, stderr)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	var statuses []string
	for _, r := range rows[1:] {
		statuses = append(statuses, r[0])
	}
	if rows[0][0] != "status" || strings.Count(strings.Join(statuses, " "), "counted") != 6 || statuses[len(statuses)-1] != "total" {
		t.Errorf("csv statuses %v", statuses)
	}

	// A generation serving ad1's 10:00 with e01 swapped for e99: same count.
	swapMinute(t, dir, from, to)
	env, stdout, stderr = testEnv("")
	if code := run(ctx, append(args, "--ad", "ad1"), env); code != exitThreshold {
		t.Fatalf("explain of a swapped set: exit %d, want %d: %s", code, exitThreshold, stderr)
	}
	t.Logf("text output:\n%s", stdout)
	if !strings.Contains(stdout.String(), "mismatched minutes: 2024-01-01T10:00:00Z") || !strings.Contains(stdout.String(), "MISMATCH") {
		t.Errorf("text output does not name the minute:\n%s", stdout)
	}
}

// swapMinute makes a committed generation serve ad1's minute 10:00 with
// e01 replaced by e99 in its digest (the count unchanged).
func swapMinute(t *testing.T, dir string, from, to time.Time) {
	t.Helper()
	ctx := context.Background()
	st, err := backend.Open(ctx, backend.Config{Backend: backend.Pebble, Path: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var recs []result.Record
	if err := st.ScanCounts(ctx, from.Unix(), to.Unix(), func(r result.Record) error {
		if c := r.Count; c != nil && c.AdID == "ad1" && c.Minute == 1704103200 {
			c.Digest = c.Digest.Sub(result.EventDigest("e01")).Add(result.EventDigest("e99"))
		}
		recs = append(recs, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	gen, err := st.NewGeneration(ctx, from.Unix(), to.Unix(), to.Unix())
	if err == nil {
		err = st.Upsert(ctx, gen, recs)
	}
	if err == nil {
		err = st.CommitGeneration(ctx, gen)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestExplainUsage(t *testing.T) {
	dir := t.TempDir()
	base := []string{"explain", "--pebble-dir", dir, "--from", "2024-01-01T10:00", "--to", "2024-01-01T10:05"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no ad", base, "--ad is required"},
		{"bad format", append(base, "--ad", "a", "--format", "xml"), "--format"},
		{"bad filter", append(base, "--ad", "a", "--filter", "colour:red"), "unknown dimension"},
		{"empty filter value", append(base, "--ad", "a", "--filter", "country:"), "empty value"},
		{"unaligned", []string{"explain", "--pebble-dir", dir, "--ad", "a", "--from", "2024-01-01T10:00:30Z", "--to", "2024-01-01T10:05"}, "--from"},
		{"from after to", []string{"explain", "--pebble-dir", dir, "--ad", "a", "--from", "2024-01-01T10:05", "--to", "2024-01-01T10:00"}, "must be before"},
		{"no output dir", append(base, "--ad", "a", "--output", filepath.Join(dir, "none", "x.csv")), "--output"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, _, stderr := testEnv("")
			if code := run(context.Background(), tc.args, env); code != 2 || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, tc.want)
			}
		})
	}
	// Every flag is checked before the store is opened.
	if entries, err := os.ReadDir(dir); err != nil || len(entries) > 0 {
		t.Errorf("a usage error opened the store: %v %v", entries, err)
	}
}

// TestServeClicks: a running `adclick serve` answers the admin clicks
// endpoint over its store: every raw click of ad1 is on the page.
func TestServeClicks(t *testing.T) {
	dir, from, to, st := rawStore(t)
	st.Close()
	srv := startBackground(t, map[string]string{"ADCLICK_TOKENS": "ops:admin:admin-token-0123456789"}, "serve", "--pebble-dir", dir)
	get := func(path string, v any) int { return adminCall(srv.base, "GET", path, v) }
	for i := 0; i < 600 && get("/readyz", nil) != 200; i++ {
		time.Sleep(50 * time.Millisecond)
	}
	var page struct {
		Clicks []struct {
			EventID string `json:"event_id"`
		}
		Total *struct {
			Verdict     string
			Unexplained []string `json:"unexplained_minutes"`
		}
	}
	q := "?from=" + from.Format("2006-01-02T15:04") + "&to=" + to.Format("2006-01-02T15:04")
	if code := get("/admin/ads/ad1/clicks"+q, &page); code != 200 || page.Total == nil {
		t.Fatalf("GET /admin/ads/ad1/clicks: %d %+v: %s", code, page, srv.errb.String())
	}
	var ids []string
	for _, c := range page.Clicks {
		ids = append(ids, c.EventID)
	}
	slices.Sort(ids)
	// Nothing is stored: the live minutes of one click are explained as a
	// click that came too late, 10:00 with three is not.
	if want := []string{"e01", "e02", "e06", "e09", "e19"}; !slices.Equal(ids, want) || page.Total.Verdict != "MISMATCH" ||
		!slices.Equal(page.Total.Unexplained, []string{"2024-01-01T10:00:00Z"}) {
		t.Errorf("listed %v (total %+v), want %v and 10:00 unexplained", ids, page.Total, want)
	}
	if code := srv.stop(t); code != 0 {
		t.Errorf("serve: exit %d", code)
	}
}
