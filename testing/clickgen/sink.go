package clickgen

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"time"
)

// Sink receives generated lines. The line's slices are valid only during the
// call. A Kafka sink keys by l.AdID and stamps records with l.Time.
type Sink interface {
	WriteLine(ctx context.Context, l *Line) error
	// Flush makes everything written so far visible downstream.
	Flush(ctx context.Context) error
}

// WriterSink writes lines, newline-terminated, to an io.Writer through a buffer.
type WriterSink struct {
	w *bufio.Writer
}

// NewWriterSink returns a Sink writing JSON lines to w.
func NewWriterSink(w io.Writer) *WriterSink { return &WriterSink{w: bufio.NewWriterSize(w, 256<<10)} }

// WriteLine implements Sink. Lines are written whole or (on error) the error is
// returned: a line never straddles two Flushes partially by our doing.
func (s *WriterSink) WriteLine(_ context.Context, l *Line) error {
	if len(l.Data)+1 > s.w.Available() && s.w.Buffered() > 0 {
		// Flush first so a tailer sees whole lines at every flush point.
		if err := s.w.Flush(); err != nil {
			return fmt.Errorf("clickgen: write: %w", err)
		}
	}
	if _, err := s.w.Write(l.Data); err != nil {
		return fmt.Errorf("clickgen: write: %w", err)
	}
	if err := s.w.WriteByte('\n'); err != nil {
		return fmt.Errorf("clickgen: write: %w", err)
	}
	return nil
}

// Flush implements Sink.
func (s *WriterSink) Flush(context.Context) error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("clickgen: flush: %w", err)
	}
	return nil
}

// RunOptions bound and pace a Run.
type RunOptions struct {
	Count int64   // lines to generate; 0 = until ctx is cancelled
	Rate  float64 // lines per wall-clock second; 0 = as fast as possible
	// FlushEvery flushes the sink at least this often while pacing (so a
	// tailer sees a steady stream); default 100ms.
	FlushEvery time.Duration
}

// Run generates lines into sink until Count lines are written or ctx ends,
// flushing before it returns. It returns how many lines were written; on
// cancellation the error is ctx's (wrapped), after a final flush.
func Run(ctx context.Context, g *Generator, sink Sink, o RunOptions) (int64, error) {
	if o.Count < 0 || o.Rate < 0 {
		return 0, fmt.Errorf("clickgen: count and rate must be ≥ 0, got %d and %v", o.Count, o.Rate)
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = 100 * time.Millisecond
	}
	var n int64
	start := time.Now()
	lastFlush := start
	var timer *time.Timer
	finish := func(err error) (int64, error) {
		if ferr := sink.Flush(context.WithoutCancel(ctx)); err == nil {
			err = ferr
		}
		return n, err
	}
	for o.Count == 0 || n < o.Count {
		if n&255 == 0 {
			if err := ctx.Err(); err != nil {
				return finish(fmt.Errorf("clickgen: stopped after %d lines: %w", n, err))
			}
		}
		if o.Rate > 0 {
			due := start.Add(time.Duration(float64(n) / o.Rate * float64(time.Second)))
			if d := time.Until(due); d > 2*time.Millisecond {
				// Ahead of schedule: let the lines so far out, then wait.
				if err := sink.Flush(ctx); err != nil {
					return finish(err)
				}
				lastFlush = time.Now()
				if timer == nil {
					timer = time.NewTimer(d)
					defer timer.Stop()
				} else {
					timer.Reset(d)
				}
				select {
				case <-ctx.Done():
					return finish(fmt.Errorf("clickgen: stopped after %d lines: %w", n, ctx.Err()))
				case <-timer.C:
				}
			} else if n&1023 == 0 && time.Since(lastFlush) > o.FlushEvery {
				if err := sink.Flush(ctx); err != nil {
					return finish(err)
				}
				lastFlush = time.Now()
			}
		}
		l := g.Next()
		if err := sink.WriteLine(ctx, &l); err != nil {
			return finish(err)
		}
		n++
	}
	return finish(nil)
}
