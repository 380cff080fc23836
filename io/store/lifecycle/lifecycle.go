// Package lifecycle runs a store's retention and garbage collection
// (store.Lifecycle) in the background of a long-running process, and exports
// what the store holds as Prometheus metrics. It is wiring: the cutoffs come
// from the clock and Config, the work from the backend.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/adclick/adclick/io/store"
)

// Defaults (docs/storage.md).
const (
	DefaultGCGrace       = time.Hour
	DefaultAbandonAfter  = 24 * time.Hour
	DefaultInterval      = 10 * time.Minute
	DefaultUsageInterval = time.Minute
)

// Config says what to keep and how often to collect. Zero values take the
// defaults.
type Config struct {
	// RawRetention keeps raw clicks this long after their event time
	// (default store.DefaultRawRetention); at least an hour, as whole
	// hours are deleted.
	RawRetention time.Duration
	// AggregateRetention keeps counts and top lists this long after their
	// minute; 0 keeps them forever. At least a day when set, as whole days
	// are deleted.
	AggregateRetention time.Duration
	// GCGrace is how long the rows a replay replaced stay after its commit,
	// for the readers that were reading them (default 1 h).
	GCGrace time.Duration
	// AbandonAfter: a replay that reserved a generation this long ago and
	// has not committed it is abandoned (default 24 h, at least GCGrace).
	AbandonAfter time.Duration
	// Interval between collections (default 10 min); UsageInterval between
	// refreshes of the usage metrics (default 1 min).
	Interval, UsageInterval time.Duration

	Log        *slog.Logger          // default slog.Default()
	Registerer prometheus.Registerer // nil: no metrics
	Backend    string                // the metrics' backend label
	Now        func() time.Time      // default time.Now
}

func (c *Config) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.RawRetention, store.DefaultRawRetention)
	def(&c.GCGrace, DefaultGCGrace)
	def(&c.AbandonAfter, DefaultAbandonAfter)
	def(&c.Interval, DefaultInterval)
	def(&c.UsageInterval, DefaultUsageInterval)
	c.AbandonAfter = max(c.AbandonAfter, c.GCGrace)
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate checks the settings; zero values are fine (defaults).
func (c Config) Validate() error {
	switch {
	case c.RawRetention != 0 && c.RawRetention < time.Hour:
		return fmt.Errorf("%w: raw retention %v: at least 1h (whole hours are deleted)", store.ErrInvalid, c.RawRetention)
	case c.AggregateRetention < 0 || c.AggregateRetention > 0 && c.AggregateRetention < 24*time.Hour:
		return fmt.Errorf("%w: aggregate retention %v: 0 (keep forever) or at least 24h (whole days are deleted)", store.ErrInvalid, c.AggregateRetention)
	case c.GCGrace < 0 || c.GCGrace > 0 && c.GCGrace < time.Minute:
		return fmt.Errorf("%w: garbage collection grace %v: at least 1m, so readers of a replaced generation finish", store.ErrInvalid, c.GCGrace)
	case c.Interval < 0 || c.UsageInterval < 0 || c.AbandonAfter < 0:
		return fmt.Errorf("%w: negative interval", store.ErrInvalid)
	}
	return nil
}

// Collection is the collection Config asks for at now.
func (c Config) Collection(now time.Time) store.Collection {
	c.defaults()
	col := store.Collection{
		RawBefore:        now.Add(-c.RawRetention),
		SupersededBefore: now.Add(-c.GCGrace),
		AbandonedBefore:  now.Add(-c.AbandonAfter),
	}
	if c.AggregateRetention > 0 {
		col.AggregatesBefore = now.Add(-c.AggregateRetention)
	}
	return col
}

// Run collects every Interval, the first one Interval after it starts (a
// collection is no part of a process's start-up work), and refreshes the
// usage metrics at once and then every UsageInterval, until ctx ends; then it
// returns nil. A failed collection or refresh is logged and counted, and
// tried again at the next tick: a store that is down for a while must not
// stop the process.
func Run(ctx context.Context, st store.Store, c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	c.defaults()
	lc, ok := st.(store.Lifecycle)
	if !ok {
		return fmt.Errorf("%w: lifecycle: %T has no retention or garbage collection", store.ErrInvalid, st)
	}
	m, err := newMetrics(c.Registerer, c.Backend)
	if err != nil {
		return err
	}
	r := &runner{lc: lc, c: c, m: m}
	collect := time.NewTicker(c.Interval)
	defer collect.Stop()
	usage := time.NewTicker(c.UsageInterval)
	defer usage.Stop()
	r.usage(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-collect.C:
			r.collect(ctx)
		case <-usage.C:
			r.usage(ctx)
		}
	}
}

type runner struct {
	lc store.Lifecycle
	c  Config
	m  *metrics
}

func (r *runner) collect(ctx context.Context) {
	start := r.c.Now()
	col := r.c.Collection(start)
	st, err := r.lc.Collect(ctx, col)
	took := r.c.Now().Sub(start)
	if err != nil {
		if ctx.Err() == nil {
			r.m.collections.WithLabelValues("error").Inc()
			r.c.Log.Warn("store collection failed; retried at the next interval", "err", err, "steps_done", st.Steps, "next_in", r.c.Interval)
		}
		return
	}
	r.m.collections.WithLabelValues("ok").Inc()
	r.m.lastCollection.Set(float64(r.c.Now().UnixMilli()) / 1000)
	r.m.lastDuration.Set(took.Seconds())
	lvl := slog.LevelDebug
	if st.Steps > 0 || st.Generations > 0 {
		lvl = slog.LevelInfo
	}
	r.c.Log.Log(ctx, lvl, "store collection done", "raw_before", col.RawBefore, "aggregates_before", col.AggregatesBefore,
		"superseded_before", col.SupersededBefore, "generations_collected", st.Generations, "steps", st.Steps, "took", took)
}

func (r *runner) usage(ctx context.Context) {
	u, err := r.lc.Usage(ctx)
	if err == nil {
		var h time.Time
		if h, err = r.lc.RawHorizon(ctx); err == nil {
			r.m.set(u, h)
			return
		}
	}
	if ctx.Err() == nil && !errors.Is(err, context.Canceled) {
		r.c.Log.Warn("store usage metrics not refreshed", "err", err)
	}
}

type metrics struct {
	rows, bytes                  *prometheus.GaugeVec
	oldestRaw, horizon           prometheus.Gauge
	lastCollection, lastDuration prometheus.Gauge
	collections                  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, backend string) (*metrics, error) {
	cl := prometheus.Labels{}
	if backend != "" {
		cl["backend"] = backend
	}
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "adclick", Subsystem: "store", Name: name, Help: help, ConstLabels: cl})
	}
	m := &metrics{
		rows: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "adclick", Subsystem: "store", Name: "rows", ConstLabels: cl,
			Help: "Rows the store holds, by kind (raw, counts, tops) and generation (empty: raw, or all generations together); estimated (docs/storage.md)."},
			[]string{"kind", "generation"}),
		bytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "adclick", Subsystem: "store", Name: "bytes", ConstLabels: cl,
			Help: "Bytes on disk the store holds, by kind and generation as adclick_store_rows; estimated (docs/storage.md)."},
			[]string{"kind", "generation"}),
		oldestRaw:      g("oldest_raw_minute_timestamp_seconds", "Event time of the oldest raw click held: its minute (Pebble) or hour (Cassandra); 0 when none."),
		horizon:        g("raw_horizon_timestamp_seconds", "Raw clicks before this event time may have been deleted by raw retention; replay and reconcile refuse ranges reading them."),
		lastCollection: g("collection_last_success_timestamp_seconds", "When the last successful retention and garbage collection ended."),
		lastDuration:   g("collection_last_duration_seconds", "How long the last successful retention and garbage collection took."),
		collections: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "adclick", Subsystem: "store", Name: "collections_total", ConstLabels: cl,
			Help: "Retention and garbage collection runs, by result (ok, error)."}, []string{"result"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.rows, m.bytes, m.oldestRaw, m.horizon, m.lastCollection, m.lastDuration, m.collections} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("lifecycle: metrics: %w", err)
			}
		}
	}
	return m, nil
}

// set replaces the usage gauges: a generation collected since disappears.
func (m *metrics) set(u store.Usage, horizon time.Time) {
	m.rows.Reset()
	m.bytes.Reset()
	for _, k := range u.Kinds {
		gen := ""
		if k.Gen >= 0 {
			gen = strconv.FormatInt(int64(k.Gen), 10)
		}
		if k.Rows >= 0 {
			m.rows.WithLabelValues(k.Kind, gen).Set(float64(k.Rows))
		}
		if k.Bytes >= 0 {
			m.bytes.WithLabelValues(k.Kind, gen).Set(float64(k.Bytes))
		}
	}
	m.oldestRaw.Set(unixOrZero(u.OldestRaw))
	m.horizon.Set(unixOrZero(horizon))
}

func unixOrZero(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.Unix())
}
