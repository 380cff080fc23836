package pebblestore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/io/store/pebblestore"
)

// fullDisk is a vfs.FS whose files stop taking bytes once a budget is spent:
// a write then stores what fits and fails with ENOSPC, as write(2) does on a
// full disk. A negative budget is no limit.
type fullDisk struct {
	vfs.FS
	mu   sync.Mutex
	free int64
}

func (d *fullDisk) setFree(n int64) { d.mu.Lock(); d.free = n; d.mu.Unlock() }

// take reserves up to n bytes and returns how many fit.
func (d *fullDisk) take(n int) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.free < 0 {
		return n
	}
	m := min(int64(n), d.free)
	d.free -= m
	return int(m)
}

func (d *fullDisk) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return &fullFile{File: f, d: d, name: name}, nil
}

func (d *fullDisk) Create(name string) (vfs.File, error) {
	f, err := d.FS.Create(name)
	return d.wrap(name, f, err)
}

func (d *fullDisk) OpenReadWrite(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := d.FS.OpenReadWrite(name, opts...)
	return d.wrap(name, f, err)
}

func (d *fullDisk) ReuseForWrite(oldname, newname string) (vfs.File, error) {
	f, err := d.FS.ReuseForWrite(oldname, newname)
	return d.wrap(newname, f, err)
}

type fullFile struct {
	vfs.File
	d    *fullDisk
	name string
}

func (f *fullFile) Write(p []byte) (int, error) {
	n := f.d.take(len(p))
	w, err := f.File.Write(p[:n])
	if err == nil && n < len(p) {
		err = &os.PathError{Op: "write", Path: f.name, Err: syscall.ENOSPC}
	}
	return w, err
}

func (f *fullFile) WriteAt(p []byte, off int64) (int, error) {
	n := f.d.take(len(p))
	w, err := f.File.WriteAt(p[:n], off)
	if err == nil && n < len(p) {
		err = &os.PathError{Op: "write", Path: f.name, Err: syscall.ENOSPC}
	}
	return w, err
}

// TestDiskFull: the disk under the store fills while the DB writer's loop
// runs (write a batch, Sync, "commit the offset"). The failing call returns
// a clear error — "disk full under <dir>", wrapping store.ErrFailed and
// store.ErrUnavailable — instead of Pebble's fatal error panicking; every
// later call returns it too, promptly; Close releases the directory. Once
// space returns, the store reopens (after a power cut on top, the worst
// case) holding every batch whose Sync returned: nothing acknowledged is
// lost, and what was not acknowledged is what the writer re-reads.
//
// Two ways Pebble meets the full disk, both checked: a Sync's WAL write
// fails (Pebble's fatal commit error, through its logger's Fatalf), or an
// asynchronous WAL write fails between Syncs and the next commit finds the
// WAL writer failed (Pebble panics with the error).
func TestDiskFull(t *testing.T) {
	for _, every := range []int{1, 50} {
		t.Run(fmt.Sprintf("sync every %d batches", every), func(t *testing.T) { testDiskFull(t, every) })
	}
}

func testDiskFull(t *testing.T, syncEvery int) {
	ctx := context.Background()
	const dir, m = "/data/db", 1704103260
	mem := vfs.NewStrictMem()
	disk := &fullDisk{FS: mem, free: -1}
	opts := pebblestore.Options{FS: disk, OnFatal: func(err error) {
		// Pebble's own goroutines do not fail here: the WAL fills first.
		t.Errorf("fatal error in a background goroutine: %v", err)
		runtime.Goexit()
	}}
	st, err := pebblestore.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	batch := func(i int) []result.Record {
		var recs []result.Record
		for j := range 100 {
			recs = append(recs, result.Record{Count: &result.Count{AdID: fmt.Sprintf("ad-%03d-%03d", i, j), Minute: m, Count: int64(i + j + 1)}})
		}
		return recs
	}
	synced := 0 // batches 0..synced-1 were acknowledged by Sync
	var failure error
	for i := 0; i < 2000 && failure == nil; i++ {
		if i == 100 {
			disk.setFree(64 << 10) // about 20 more batches fit
		}
		failure = st.Merge(ctx, store.LiveGeneration, batch(i))
		if failure == nil && (i+1)%syncEvery == 0 {
			if failure = st.Sync(ctx); failure == nil {
				synced = i + 1
			}
		}
	}
	if failure == nil {
		t.Fatal("2000 batches written on a full disk without an error")
	}
	t.Logf("after %d synced batches: %v", synced, failure)
	if synced < 100 {
		t.Fatalf("only %d batches synced before the disk filled", synced)
	}
	for _, want := range []string{"disk full under " + dir, "no space left on device"} {
		if !strings.Contains(failure.Error(), want) {
			t.Errorf("error %q does not say %q", failure, want)
		}
	}
	if !errors.Is(failure, store.ErrFailed) || !errors.Is(failure, store.ErrUnavailable) {
		t.Errorf("error %v wraps neither store.ErrFailed nor store.ErrUnavailable", failure)
	}
	select {
	case <-st.Failed():
	default:
		t.Error("Failed() not closed after a fatal error")
	}
	// Every later call fails the same way, without blocking in Pebble's
	// broken commit pipeline.
	later := map[string]func() error{
		"Merge": func() error { return st.Merge(ctx, store.LiveGeneration, batch(0)) },
		"Sync":  func() error { return st.Sync(ctx) },
		"Count": func() error { _, err := st.Count(ctx, "ad-000-000", "", m, m+60); return err },
		"Ping":  func() error { return st.Ping(ctx) },
	}
	for name, call := range later {
		done := make(chan error, 1)
		go func() { done <- call() }()
		select {
		case err := <-done:
			if !errors.Is(err, store.ErrFailed) {
				t.Errorf("%s after the failure: %v, want store.ErrFailed", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s after the failure blocked", name)
		}
	}
	if err := st.Close(); !errors.Is(err, store.ErrFailed) {
		t.Errorf("Close of the failed store: %v, want its failure", err)
	}

	// Still full: reopening fails with an error, not a panic.
	if st, err := pebblestore.Open(dir, opts); err == nil {
		st.Close()
		t.Error("reopened on a full disk")
	} else {
		t.Logf("reopening on the full disk: %v", err)
	}

	// Space returns after a power cut: what Sync acknowledged is there.
	mem.SetIgnoreSyncs(true)
	mem.ResetToSyncedState()
	mem.SetIgnoreSyncs(false)
	disk.setFree(-1)
	st, err = pebblestore.Open(dir, opts)
	if err != nil {
		t.Fatalf("reopening once space returned: %v", err)
	}
	defer st.Close()
	for i := range synced {
		for _, r := range batch(i) {
			n, err := st.Count(ctx, r.Count.AdID, "", m, m+60)
			if err != nil {
				t.Fatal(err)
			}
			if n != r.Count.Count {
				t.Fatalf("%s: count %d after reopening, want %d (batch %d of %d synced)", r.Count.AdID, n, r.Count.Count, i, synced)
			}
		}
	}
	if err := st.Merge(ctx, store.LiveGeneration, batch(synced)); err != nil {
		t.Fatalf("writing after reopening: %v", err)
	}
	if err := st.Sync(ctx); err != nil {
		t.Fatalf("syncing after reopening: %v", err)
	}
}
