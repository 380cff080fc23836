// Package dbwriter is a standalone service, the DB writer of the design
// (§4 ③⑤): it consumes a Kafka topic with a consumer group and writes what it
// reads into a store — result records (the aggregation topic) into the
// aggregate store, or raw click lines (the raw topic) into the raw store. It
// uses no Beam.
//
// Offsets are committed only after the store acknowledged the batch and made
// it durable (store.Store.Sync: one fsync per commit for the embedded store,
// not one per row), and every write is idempotent (results merge by key, raw
// clicks are keyed by event id), so a crash of the process, of the OS or of
// the power at any moment re-delivers at most the uncommitted tail and stored
// values converge. While the store is down the writer keeps
// retrying the same batch with backoff and stops consuming: results wait in
// Kafka, nothing is dropped, and the aggregation job upstream is not slowed.
// A store that failed for good (store.ErrFailed: the embedded store on a
// full disk) is not retried: Run returns its error, without committing, and
// the process exits non-zero for its supervisor to restart once the cause
// is fixed; the restart re-reads the uncommitted tail.
package dbwriter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/kafkasec"
	"github.com/adclick/adclick/io/store"
)

// Kind says what the topic holds.
type Kind string

const (
	Results Kind = "results" // result.Record JSON, keyed by Record.Key
	Raw     Kind = "raw"     // click lines as published by the log watcher
)

// Config configures one writer.
type Config struct {
	Brokers    []string
	Security   kafkasec.Security // how the client connects (TLS, SASL)
	Topic      string
	Group      string
	Kind       Kind
	Generation store.Generation // for Results; LiveGeneration for the streaming job
	// MaxBatch bounds the records written per store call (default 5000).
	MaxBatch int
	// RetryMax caps the backoff between retries of a failed write (default 10 s).
	RetryMax time.Duration
	Log      *slog.Logger
	Registry prometheus.Registerer // nil: no metrics
}

// Validate reports every configuration problem.
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("dbwriter: no brokers"))
	}
	if c.Topic == "" || c.Group == "" {
		errs = append(errs, errors.New("dbwriter: topic and group are required"))
	}
	if c.Kind != Results && c.Kind != Raw {
		errs = append(errs, fmt.Errorf("dbwriter: kind %q: want %q or %q", c.Kind, Results, Raw))
	}
	if c.Generation < 0 || c.MaxBatch < 0 || c.RetryMax < 0 {
		errs = append(errs, errors.New("dbwriter: negative generation, batch or retry"))
	}
	if err := c.Security.Check(); err != nil {
		errs = append(errs, fmt.Errorf("dbwriter: %w", err))
	}
	return errors.Join(errs...)
}

type metrics struct {
	consumed, written, rejected, retries prometheus.Counter
	latency                              prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, kind Kind) (*metrics, error) {
	l := prometheus.Labels{"kind": string(kind)}
	m := &metrics{
		consumed: prometheus.NewCounter(prometheus.CounterOpts{Name: "adclick_dbwriter_records_consumed_total", Help: "Kafka records consumed.", ConstLabels: l}),
		written:  prometheus.NewCounter(prometheus.CounterOpts{Name: "adclick_dbwriter_rows_written_total", Help: "Rows written to the store.", ConstLabels: l}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{Name: "adclick_dbwriter_records_rejected_total", Help: "Records that are not valid for their topic (skipped; malformed clicks are dead-lettered by the streaming job).", ConstLabels: l}),
		retries:  prometheus.NewCounter(prometheus.CounterOpts{Name: "adclick_dbwriter_write_retries_total", Help: "Store writes retried after an error.", ConstLabels: l}),
		latency:  prometheus.NewHistogram(prometheus.HistogramOpts{Name: "adclick_dbwriter_write_seconds", Help: "Latency of one batched store write.", ConstLabels: l, Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.consumed, m.written, m.rejected, m.retries, m.latency} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("dbwriter: metrics: %w", err)
			}
		}
	}
	return m, nil
}

// Run consumes until ctx ends. It returns nil on cancellation after
// committing what was written, and an error wrapping store.ErrFailed when
// the store failed for good.
func Run(ctx context.Context, cfg Config, st store.Store) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = 5000
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = 10 * time.Second
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "dbwriter", "kind", cfg.Kind, "topic", cfg.Topic)
	m, err := newMetrics(cfg.Registry, cfg.Kind)
	if err != nil {
		return err
	}
	secOpts, err := cfg.Security.Opts()
	if err != nil {
		return fmt.Errorf("dbwriter: %w", err)
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(250 * time.Millisecond),
	}, secOpts...)...)
	if err != nil {
		return fmt.Errorf("dbwriter: kafka client: %w", err)
	}
	defer cl.Close()
	w := &writer{cfg: cfg, st: st, m: m, log: log}
	for {
		fetches := cl.PollRecords(ctx, cfg.MaxBatch)
		if ctx.Err() != nil {
			return nil
		}
		var recs []*kgo.Record
		var fetchErr error
		fetches.EachError(func(t string, p int32, err error) {
			if fetchErr == nil && !errors.Is(err, context.Canceled) {
				fetchErr = fmt.Errorf("dbwriter: fetch %s/%d: %w", t, p, err)
			}
		})
		if fetchErr != nil {
			log.Warn("fetch failed; retrying", "err", fetchErr)
			if !sleep(ctx, time.Second) {
				return nil
			}
			continue
		}
		fetches.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
		if len(recs) == 0 {
			continue
		}
		m.consumed.Add(float64(len(recs)))
		// Only cancellation and a store failed for good end the retry loops.
		if err := w.write(ctx, recs); err != nil {
			return failed(err)
		}
		// A committed offset is never read again: what it covers must
		// survive a power cut first.
		if err := w.sync(ctx); err != nil {
			return failed(err)
		}
		// Commit only what the store acknowledged and synced. A failed
		// commit leaves an older offset: the next owner re-writes the same
		// values.
		if err := cl.CommitRecords(ctx, recs...); err != nil && ctx.Err() == nil {
			log.Warn("offset commit failed; records will be re-delivered and re-written", "err", err)
		}
	}
}

// failed is Run's result for an error that ended a retry loop: nil for
// cancellation, the store's failure otherwise.
func failed(err error) error {
	if errors.Is(err, store.ErrFailed) {
		return fmt.Errorf("dbwriter: the store failed; exiting without committing the batch (it is re-read after a restart): %w", err)
	}
	return nil
}

type writer struct {
	cfg    Config
	st     store.Store
	m      *metrics
	log    *slog.Logger
	parser click.Parser
	// warnedTooLate: the store's lack of a TooLateStore was logged.
	warnedTooLate bool
}

// write stores one polled batch, retrying until it succeeds or ctx ends.
func (w *writer) write(ctx context.Context, recs []*kgo.Record) error {
	switch w.cfg.Kind {
	case Results:
		// Panes of one key arrive on one partition; one merged value per key
		// and batch is written, merged again with the store's (Merge).
		latest := make(map[string]int, len(recs))
		var batch []result.Record
		var late []result.TooLate // not aggregates: never merged (toolate.go)
		for _, r := range recs {
			var rec result.Record
			if err := rec.UnmarshalJSON(r.Value); err != nil { // not json.Unmarshal: it scans the value once more first
				w.m.rejected.Inc()
				w.log.Warn("skipping a record that is not a result", "partition", r.Partition, "offset", r.Offset, "err", err)
				continue
			}
			if rec.TooLate != nil {
				late = append(late, *rec.TooLate)
				continue
			}
			if i, ok := latest[rec.Key()]; ok {
				batch[i] = mergeRecords(batch[i], rec)
				continue
			}
			latest[rec.Key()] = len(batch)
			batch = append(batch, rec)
		}
		err := writeAll(ctx, w, batch, func(ctx context.Context, b []result.Record) error {
			return w.st.Merge(ctx, w.cfg.Generation, b)
		})
		if err != nil {
			return err
		}
		return w.writeTooLate(ctx, late)
	default:
		clicks := make([]click.Click, 0, len(recs))
		for _, r := range recs {
			c, err := w.parser.Parse(r.Value)
			if err != nil {
				w.m.rejected.Inc() // the streaming job dead-letters it
				continue
			}
			clicks = append(clicks, c)
		}
		return writeAll(ctx, w, clicks, w.st.WriteRaw)
	}
}

// sync makes the written batches durable, retrying with backoff while the
// store fails; it returns an error only when ctx ends or the store failed
// for good.
func (w *writer) sync(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for {
		err := w.st.Sync(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("dbwriter: sync: %w", ctx.Err())
		}
		if errors.Is(err, store.ErrFailed) {
			return err
		}
		w.m.retries.Inc()
		w.log.Warn("store sync failed; retrying before committing offsets", "backoff", backoff, "err", err)
		if !sleep(ctx, backoff) {
			return fmt.Errorf("dbwriter: sync: %w", ctx.Err())
		}
		backoff = min(2*backoff, w.cfg.RetryMax)
	}
}

// mergeRecords merges two values of one key as store.AggregateStore.Merge
// does: results are monotone, so the larger count and the merged top list
// are the newer ones — and a pane a restarted job recomputed from part of
// its data never replaces a complete one, in a batch or in the store.
func mergeRecords(a, b result.Record) result.Record {
	switch {
	case a.Count != nil && b.Count != nil:
		if a.Count.Count > b.Count.Count {
			return a
		}
	case a.Filtered != nil && b.Filtered != nil:
		if a.Filtered.Count > b.Filtered.Count {
			return a
		}
	case a.Top != nil && b.Top != nil:
		t := *b.Top
		t.Ads = store.MergeTop(a.Top.Ads, b.Top.Ads)
		return result.Record{Top: &t}
	}
	return b
}

// writeAll writes batch, retrying with backoff while the store fails, until
// ctx ends or the store failed for good. A batch the store refuses as
// invalid is split until the refused rows are isolated: only those are
// skipped (loudly), never their neighbours.
func writeAll[T any](ctx context.Context, w *writer, batch []T, op func(context.Context, []T) error) error {
	if len(batch) == 0 {
		return nil
	}
	backoff := 100 * time.Millisecond
	for {
		start := time.Now()
		err := op(ctx, batch)
		if err == nil {
			w.m.latency.Observe(time.Since(start).Seconds())
			w.m.written.Add(float64(len(batch)))
			return nil
		}
		if errors.Is(err, store.ErrInvalid) {
			if len(batch) == 1 {
				w.m.rejected.Inc()
				w.log.Error("store refused a row as invalid; skipping it", "row", fmt.Sprintf("%+v", batch[0]), "err", err)
				return nil
			}
			mid := len(batch) / 2
			if err := writeAll(ctx, w, batch[:mid], op); err != nil {
				return err
			}
			return writeAll(ctx, w, batch[mid:], op)
		}
		if errors.Is(err, store.ErrFailed) {
			return err
		}
		w.m.retries.Inc()
		w.log.Warn("store write failed; retrying", "rows", len(batch), "backoff", backoff, "err", err)
		if !sleep(ctx, backoff) {
			return ctx.Err()
		}
		backoff = min(2*backoff, w.cfg.RetryMax)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
