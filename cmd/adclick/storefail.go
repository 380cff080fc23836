package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/adclick/adclick/io/store"
)

// storeFailed waits until st fails for good and returns its failure
// (wrapping store.ErrFailed: the embedded store after a failed write, a full
// disk above all), or nil when ctx ends first or the backend cannot fail so
// (Cassandra). The DB writers return that failure themselves; a process that
// mostly reads (serve, the all-in-one's API) would otherwise answer 503 for
// ever instead of exiting for its supervisor to restart it once the disk
// has room.
func storeFailed(ctx context.Context, st store.Store) error {
	f, ok := st.(interface {
		Failed() <-chan struct{}
		Err() error
	})
	if !ok {
		return nil
	}
	select {
	case <-f.Failed():
		return fmt.Errorf("the store failed; exiting: %w", f.Err())
	case <-ctx.Done():
		return nil
	}
}

// untilStoreFails returns a context that ends with ctx or when st fails for
// good, and a function that releases it and returns that failure (nil if
// none).
func untilStoreFails(ctx context.Context, st store.Store) (context.Context, func() error) {
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		if err := storeFailed(ctx, st); err != nil {
			cancel(err)
		}
	}()
	return ctx, func() error {
		cause := context.Cause(ctx)
		cancel(nil)
		if errors.Is(cause, store.ErrFailed) {
			return cause
		}
		return nil
	}
}
