package storeio

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/io/store/backend"
)

func init() {
	register.DoFn2x1[context.Context, click.Batch, error](&writeRawFn{})
	register.DoFn2x1[context.Context, result.Record, error](&writeAggregatesFn{})
}

// Write batching and retry defaults.
const (
	DefaultWriteBatch = 5000
	defaultRetries    = 8
	retryMin          = 100 * time.Millisecond
	retryMax          = 10 * time.Second
)

// WriteOptions tune the write transforms.
type WriteOptions struct {
	Batch   int // elements per store write (default DefaultWriteBatch)
	Retries int // retries of a failed write with exponential backoff (default 8)
}

func (o *WriteOptions) defaults() {
	if o.Batch <= 0 {
		o.Batch = DefaultWriteBatch
	}
	if o.Retries <= 0 {
		o.Retries = defaultRetries
	}
}

// WriteRaw stores every click of a PCollection<click.Batch>. Writes are
// idempotent (a re-run bundle writes the same rows again), batched within a
// bundle, flushed when a batch is full and in FinishBundle, and retried with
// backoff while the store is unavailable; a write that still fails fails the
// bundle, so the runner retries it — nothing is dropped.
func WriteRaw(s beam.Scope, cfg backend.Config, clicks beam.PCollection, o WriteOptions) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	o.defaults()
	beam.ParDo0(s.Scope("storeio.WriteRaw"), &writeRawFn{Cfg: cfg, Batch: o.Batch, Retries: o.Retries}, clicks)
	return nil
}

// WriteAggregates upserts every record of a PCollection<result.Record> into
// generation gen (store.LiveGeneration for the streaming job), batched,
// flushed and retried like WriteRaw. Upserts overwrite by key, so re-runs and
// accumulating re-firings converge.
func WriteAggregates(s beam.Scope, cfg backend.Config, gen store.Generation, records beam.PCollection, o WriteOptions) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if gen < 0 {
		return fmt.Errorf("%w: storeio: generation %d", store.ErrInvalid, gen)
	}
	o.defaults()
	beam.ParDo0(s.Scope("storeio.WriteAggregates"), &writeAggregatesFn{Cfg: cfg, Gen: int64(gen), Batch: o.Batch, Retries: o.Retries}, records)
	return nil
}

// withRetry runs write until it succeeds, fails with a non-transient error,
// or retries run out; each retry is counted.
func withRetry(ctx context.Context, retries int, retried beam.Counter, write func() error) error {
	backoff := retryMin
	for attempt := 0; ; attempt++ {
		err := write()
		if err == nil || errors.Is(err, store.ErrInvalid) || attempt >= retries {
			return err
		}
		retried.Inc(ctx, 1)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(backoff/2 + rand.N(backoff/2+1)):
		}
		backoff = min(2*backoff, retryMax)
	}
}

type writeRawFn struct {
	Cfg     backend.Config
	Batch   int
	Retries int

	st               store.Store
	buf              []click.Click
	written, retried beam.Counter
}

func (fn *writeRawFn) Setup(ctx context.Context) error {
	fn.written = beam.NewCounter("adclick.storeio", "raw_clicks_written")
	fn.retried = beam.NewCounter("adclick.storeio", "raw_write_retries")
	st, err := backend.Open(ctx, fn.Cfg, nil)
	fn.st = st
	return err
}

func (fn *writeRawFn) Teardown() {
	if fn.st != nil {
		fn.st.Close()
	}
}

func (fn *writeRawFn) ProcessElement(ctx context.Context, b click.Batch) error {
	for len(b.Clicks) > 0 {
		n := min(fn.Batch-len(fn.buf), len(b.Clicks))
		fn.buf = append(fn.buf, b.Clicks[:n]...)
		b.Clicks = b.Clicks[n:]
		if len(fn.buf) >= fn.Batch {
			if err := fn.flush(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

func (fn *writeRawFn) FinishBundle(ctx context.Context) error { return fn.flush(ctx) }

func (fn *writeRawFn) flush(ctx context.Context) error {
	if len(fn.buf) == 0 {
		return nil
	}
	err := withRetry(ctx, fn.Retries, fn.retried, func() error { return fn.st.WriteRaw(ctx, fn.buf) })
	if err != nil {
		return fmt.Errorf("storeio: write %d raw clicks: %w", len(fn.buf), err)
	}
	fn.written.Inc(ctx, int64(len(fn.buf)))
	fn.buf = fn.buf[:0]
	return nil
}

type writeAggregatesFn struct {
	Cfg     backend.Config
	Gen     int64
	Batch   int
	Retries int

	st               store.Store
	buf              []result.Record
	written, retried beam.Counter
}

func (fn *writeAggregatesFn) Setup(ctx context.Context) error {
	fn.written = beam.NewCounter("adclick.storeio", "records_written")
	fn.retried = beam.NewCounter("adclick.storeio", "record_write_retries")
	st, err := backend.Open(ctx, fn.Cfg, nil)
	fn.st = st
	return err
}

func (fn *writeAggregatesFn) Teardown() {
	if fn.st != nil {
		fn.st.Close()
	}
}

func (fn *writeAggregatesFn) ProcessElement(ctx context.Context, r result.Record) error {
	fn.buf = append(fn.buf, r)
	if len(fn.buf) >= fn.Batch {
		return fn.flush(ctx)
	}
	return nil
}

func (fn *writeAggregatesFn) FinishBundle(ctx context.Context) error { return fn.flush(ctx) }

func (fn *writeAggregatesFn) flush(ctx context.Context) error {
	if len(fn.buf) == 0 {
		return nil
	}
	err := withRetry(ctx, fn.Retries, fn.retried, func() error {
		return fn.st.Upsert(ctx, store.Generation(fn.Gen), fn.buf)
	})
	if err != nil {
		return fmt.Errorf("storeio: upsert %d records: %w", len(fn.buf), err)
	}
	fn.written.Inc(ctx, int64(len(fn.buf)))
	fn.buf = fn.buf[:0]
	return nil
}
