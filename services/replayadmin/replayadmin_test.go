package replayadmin

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/io/store/backend"
	"github.com/adclick/adclick/queryapi"
	"github.com/adclick/adclick/runners"
	"github.com/adclick/adclick/testing/clickgen"
	"github.com/adclick/adclick/testing/e2e"
)

// rawStore writes the valid clicks of a generated log (three minutes, from
// hours ago: settled) into a fresh Pebble directory and returns it with the
// whole minutes covering them.
func rawStore(t *testing.T) (dir string, from, to time.Time, st store.Store) {
	t.Helper()
	start := time.Now().Add(-3 * time.Hour).Truncate(time.Minute).UTC()
	lines, _, err := clickgen.Lines(3000, clickgen.Config{Seed: 7, Ads: 20, Start: start, EventRate: 3000.0 / 180})
	if err != nil {
		t.Fatal(err)
	}
	return e2e.RawPebble(t, lines)
}

// TestReplayAdmin: the query API's admin hook runs a replay in the process
// and reports it; bad requests and unknown jobs get the errors the API maps
// to 400 and 404.
func TestReplayAdmin(t *testing.T) {
	dir, from, to, st := rawStore(t)
	ctx := context.Background()
	a := New(ctx, backend.Config{Backend: backend.Pebble, Path: dir}, Config([]int{1}, 10), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if _, err := a.StartReplay(ctx, to.Unix(), from.Unix()); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("reversed range: %v, want ErrInvalid", err)
	}
	now := time.Now().Truncate(time.Minute)
	if _, err := a.StartReplay(ctx, now.Add(-time.Hour).Unix(), now.Unix()); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("open minutes: %v, want ErrInvalid", err)
	}
	job, err := a.StartReplay(ctx, from.Unix(), to.Unix())
	if err != nil || job.State != "running" || job.ID == "" {
		t.Fatalf("StartReplay = %+v, %v", job, err)
	}
	if err := a.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := a.ReplayStatus(ctx, job.ID)
	if err != nil || got.State != "done" || got.Finished.IsZero() {
		t.Fatalf("ReplayStatus = %+v, %v; want done", got, err)
	}
	n := 0
	if err := st.ScanCounts(ctx, from.Unix(), to.Unix(), func(result.Record) error { n++; return nil }); err != nil || n == 0 {
		t.Errorf("after the admin replay the store serves %d counts (%v)", n, err)
	}
	a.mu.Lock()
	a.running = MaxRunning
	a.mu.Unlock()
	if _, err := a.StartReplay(ctx, from.Unix(), to.Unix()); !errors.Is(err, queryapi.ErrConflict) {
		t.Errorf("a replay while one runs: %v, want ErrConflict (409)", err)
	}
	a.mu.Lock()
	a.running = 0
	a.mu.Unlock()
	if _, err := a.ReplayStatus(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown job: %v, want ErrNotFound", err)
	}
}

// TestReplayAdminRefusesExpiredRaw: a replay whose reads reach raw clicks
// that raw retention has deleted is refused as a bad request, with a message
// that names the retention, and no job starts.
func TestReplayAdminRefusesExpiredRaw(t *testing.T) {
	dir, from, to, st := rawStore(t)
	ctx := context.Background()
	lc := st.(store.Lifecycle)
	if _, err := lc.Collect(ctx, store.Collection{RawBefore: from.Add(2 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	a := New(ctx, backend.Config{Backend: backend.Pebble, Path: dir}, Config([]int{1, 5}, 10), slog.New(slog.NewTextHandler(io.Discard, nil)))
	// Counts from the horizon on, but its 5-minute lists read 4 minutes before.
	_, err := a.StartReplay(ctx, from.Add(3*time.Minute).Unix(), to.Unix())
	if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "raw retention") {
		t.Errorf("a replay reading expired raw clicks: %v, want ErrInvalid naming the raw retention", err)
	}
	if len(a.jobs) != 0 {
		t.Errorf("a refused replay started a job: %v", a.jobs)
	}
}

// TestOpenFrom: the first open minute the commands give a replay is the one
// CheckSettled refuses ranges after, and none with --allow-open-minutes.
func TestOpenFrom(t *testing.T) {
	now := time.Date(2024, 1, 1, 10, 7, 30, 0, time.UTC)
	want := time.Date(2024, 1, 1, 10, 1, 0, 0, time.UTC) // 10:07:30 − 6 min, whole minutes
	if got := OpenFrom(false, now); !got.Equal(want) {
		t.Errorf("openFrom = %s, want %s", got, want)
	}
	if got := OpenFrom(true, now); !got.IsZero() {
		t.Errorf("openFrom with --allow-open-minutes = %s, want zero", got)
	}
	if err := CheckSettled(want, false, now); err != nil {
		t.Errorf("a range ending at the first open minute: %v", err)
	}
	if err := CheckSettled(want.Add(time.Minute), false, now); err == nil {
		t.Error("a range ending after the first open minute was accepted")
	}
}

func TestMain(m *testing.M) {
	runners.Init()
	os.Exit(m.Run())
}
