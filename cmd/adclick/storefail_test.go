package main

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/adclick/adclick/io/store"
)

// failingStore fails for good when its channel is closed, as the embedded
// store does on a full disk.
type failingStore struct {
	store.Store
	failed chan struct{}
}

func (f failingStore) Failed() <-chan struct{} { return f.failed }
func (f failingStore) Err() error {
	return fmt.Errorf("%w: pebblestore: disk full under /x", store.ErrFailed)
}

// TestUntilStoreFails: serve's context ends when the store fails for good,
// and serve then returns the failure (exit status 1) instead of answering
// 503 for ever; without a failure it returns nil.
func TestUntilStoreFails(t *testing.T) {
	st := failingStore{failed: make(chan struct{})}
	ctx, storeErr := untilStoreFails(context.Background(), st)
	select {
	case <-ctx.Done():
		t.Fatal("context ended before the store failed")
	case <-time.After(50 * time.Millisecond):
	}
	close(st.failed)
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("context still running 5 s after the store failed")
	}
	if err := storeErr(); !errors.Is(err, store.ErrFailed) {
		t.Fatalf("storeErr() = %v, want the store's failure", err)
	}

	ctx, storeErr = untilStoreFails(context.Background(), failingStore{failed: make(chan struct{})})
	if err := storeErr(); err != nil || ctx.Err() == nil {
		t.Fatalf("without a failure: storeErr() = %v, context %v", err, ctx.Err())
	}
}
