package pipelines_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/pipelines"
)

// TestRefuseExpiredRaw: replay and reconcile refuse, before reserving or
// reading anything, a range whose raw clicks raw retention may have deleted,
// with a message that says so; a replay whose counts start at the horizon is
// refused too when its first top lists sum earlier minutes.
func TestRefuseExpiredRaw(t *testing.T) {
	cfg := pebbleStore(t)
	st := openStore(t, cfg)
	ctx := context.Background()
	horizon := testStart.Add(2 * time.Hour)
	if _, err := st.(store.Lifecycle).Collect(ctx, store.Collection{RawBefore: horizon}); err != nil {
		t.Fatal(err)
	}
	refused := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "raw retention has deleted") {
			t.Errorf("%s: %v, want ErrInvalid saying raw retention deleted the clicks", what, err)
		}
	}
	_, err := pipelines.Replay(ctx, pipelines.ReplayOptions{Store: cfg, From: testStart, To: testStart.Add(time.Hour), Config: testConfig()})
	refused("replay before the horizon", err)
	_, err = pipelines.Replay(ctx, pipelines.ReplayOptions{Store: cfg, From: horizon, To: horizon.Add(time.Hour), Config: testConfig()})
	refused("replay from the horizon, whose top lists read 14 minutes before it", err)
	_, err = pipelines.Reconcile(ctx, pipelines.ReconcileOptions{Store: cfg, From: testStart, To: horizon, Config: testConfig()})
	refused("reconcile before the horizon", err)
	n := 0
	if err := st.ScanCounts(ctx, testStart.Unix(), horizon.Add(2*time.Hour).Unix(), func(result.Record) error { n++; return nil }); err != nil || n != 0 {
		t.Errorf("a refused replay wrote %d counts (%v)", n, err)
	}
}
