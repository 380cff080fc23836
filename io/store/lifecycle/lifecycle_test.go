package lifecycle

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/io/store/pebblestore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRunCollectsAndExports: Run deletes the raw clicks older than the
// retention at its first interval, keeps the newer ones, and exports the store's usage
// and the collection's time; it returns when its context ends.
func TestRunCollectsAndExports(t *testing.T) {
	st, err := pebblestore.Open(t.TempDir(), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2030, 5, 1, 12, 30, 0, 0, time.UTC)
	ctx := context.Background()
	mk := func(id string, age time.Duration) click.Click {
		return click.Click{EventID: id, AdID: "ad", Time: now.Add(-age).UnixMilli()}
	}
	if err := st.WriteRaw(ctx, []click.Click{mk("old", 5*time.Hour), mk("new", 90*time.Minute)}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- Run(rctx, st, Config{RawRetention: 2 * time.Hour, Interval: 20 * time.Millisecond, UsageInterval: 10 * time.Millisecond, Registerer: reg, Backend: "pebble",
			Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return now }})
	}()
	deadline := time.Now().Add(30 * time.Second)
	for gauge(t, reg, "adclick_store_raw_horizon_timestamp_seconds") == 0 || gauge(t, reg, "adclick_store_oldest_raw_minute_timestamp_seconds") != float64(now.Add(-90*time.Minute).Unix()) {
		if time.Now().After(deadline) {
			t.Fatal("no usage metrics after 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v", err)
	}
	var ids []string
	shards, _ := st.RawShards(ctx, now.Add(-24*time.Hour), now, 1)
	if err := st.ReadRaw(ctx, shards[0], func(c click.Click) error { ids = append(ids, c.EventID); return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(ids, ",") != "new" {
		t.Errorf("raw clicks after the collection: %v, want only the one younger than the retention", ids)
	}
	if got, want := (gauge(t, reg, "adclick_store_raw_horizon_timestamp_seconds")), float64(now.Add(-2*time.Hour).Unix()); got != want {
		t.Errorf("raw horizon metric %v, want %v", got, want)
	}
	if got, want := (gauge(t, reg, "adclick_store_oldest_raw_minute_timestamp_seconds")), float64(now.Add(-90*time.Minute).Unix()); got != want {
		t.Errorf("oldest raw minute metric %v, want %v", got, want)
	}
	if got := (gauge(t, reg, "adclick_store_collection_last_success_timestamp_seconds")); got != float64(now.Unix()) {
		t.Errorf("last collection metric %v, want %v", got, now.Unix())
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := 0
	for _, mf := range mfs {
		if mf.GetName() == "adclick_store_bytes" {
			series = len(mf.GetMetric())
		}
	}
	if series != 3 {
		t.Errorf("adclick_store_bytes has %d series, want 3: raw, live counts, live tops", series)
	}
}

// gauge is the value of the single series of name in reg, 0 when absent.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return 0
}

func TestValidate(t *testing.T) {
	for _, c := range []Config{{RawRetention: 30 * time.Minute}, {AggregateRetention: time.Hour}, {GCGrace: time.Second}, {Interval: -1}} {
		if err := c.Validate(); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalid", c, err)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("the defaults do not validate: %v", err)
	}
}
