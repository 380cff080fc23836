package pebblestore

import (
	"errors"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/adclick/adclick/io/store"
)

// The paths by which Pebble reports a failure it cannot continue after,
// each turned into the store's error, not a panic. TestDiskFull drives a
// real database onto a full disk; there the filesystem fails the store
// before Pebble's own reports, which these tests reach directly.

func noSpace() error { return &os.PathError{Op: "write", Path: "/d/000002.log", Err: syscall.ENOSPC} }

// TestFatalfUnderGuard: Pebble's fatal commit error, reported through
// Fatalf in the goroutine of one of our calls, becomes that call's error;
// later calls do not reach Pebble.
func TestFatalfUnderGuard(t *testing.T) {
	f := newFailure("/d", func(err error) { t.Errorf("OnFatal ran for a failure under guard: %v", err); runtime.Goexit() })
	err := f.guard(func() error {
		logger{f}.Fatalf("pebble: fatal commit error: %v", noSpace())
		t.Error("Fatalf returned")
		return nil
	})
	if !errors.Is(err, store.ErrFailed) || !strings.Contains(err.Error(), "disk full under /d: pebble: fatal commit error: write /d/000002.log: no space left on device") {
		t.Fatalf("guard returned %v", err)
	}
	if f.locked.Load() {
		t.Error("a failure reported through Fatalf marked the database locked")
	}
	ran := false
	if err2 := f.guard(func() error { ran = true; return nil }); ran || err2 != err {
		t.Errorf("after the failure: op ran %v, error %v", ran, err2)
	}
}

// TestPanicUnderGuard: Pebble's panic with the WAL writer's error (commit
// lock held) becomes the call's error, and the database is marked locked
// so that Close does not wait on it; a runtime error is a bug and is
// raised again.
func TestPanicUnderGuard(t *testing.T) {
	f := newFailure("/d", nil)
	err := f.guard(func() error { panic(noSpace()) })
	if !errors.Is(err, store.ErrFailed) || !strings.Contains(err.Error(), "disk full under /d") || !f.locked.Load() {
		t.Fatalf("guard returned %v, locked %v", err, f.locked.Load())
	}
	f = newFailure("/d", nil)
	err = f.guard(func() error { panic("pebble: invariant") })
	if !errors.Is(err, store.ErrFailed) || !strings.Contains(err.Error(), "fatal storage error under /d: pebble: panic: pebble: invariant") {
		t.Fatalf("guard returned %v", err)
	}
	defer func() {
		if _, ok := recover().(runtime.Error); !ok {
			t.Error("a runtime error was not raised again")
		}
	}()
	newFailure("/d", nil).guard(func() error {
		xs, i := []int{0}, len(os.Args)+1
		xs[i]++ // index out of range
		return nil
	})
}

// TestFatalfInBackground: a Fatalf in one of Pebble's own goroutines (no
// call of ours to return the error to) runs OnFatal with the error and
// marks the database locked.
func TestFatalfInBackground(t *testing.T) {
	got := make(chan error, 1)
	f := newFailure("/d", func(err error) {
		got <- err
		runtime.Goexit() // the default exits the process
	})
	go logger{f}.Fatalf("MANIFEST sync failed: %v", &os.PathError{Op: "sync", Path: "/d/MANIFEST-000001", Err: syscall.EIO})
	err := <-got
	if !errors.Is(err, store.ErrFailed) || !strings.Contains(err.Error(), "fatal storage error under /d: MANIFEST sync failed") || !f.locked.Load() {
		t.Fatalf("OnFatal got %v, locked %v", err, f.locked.Load())
	}
	if f.get() != err {
		t.Errorf("store failure %v, want %v", f.get(), err)
	}
}
