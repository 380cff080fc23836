// Package pebblestore is the embedded store.Store of the all-in-one, on
// github.com/cockroachdb/pebble (an LSM key-value store in pure Go: no Java,
// no server, crash-safe through its write-ahead log): a backend that keeps
// everything in one local directory.
//
// Key layout (all integers big-endian; signed ones with the sign bit flipped so
// byte order is numeric order; strings behind a 2-byte length):
//
//	r | ts ms | ad | event_id                       raw click → other attributes
//	c | gen | hour | ad | filter | minute           count → uvarint (filter "" = unfiltered)
//	t | gen | window | minute                       top list
//	m | g | gen                                     generation record (ranges, commit seq, times, collected)
//	m | r                                           raw horizon (ms): raw retention deleted what is older
//
// Merge writes counts and top lists as Pebble merge operands (merger.go):
// Pebble applies the merge rule when it reads or compacts a key, so a write
// reads nothing; Upsert writes them as plain values.
//
// Raw clicks are ordered by event time first, so a time range is one range
// scan and RawShards cuts [from, to) into n contiguous time slices that cover
// every click exactly once. Counts are bucketed by event-time hour under the
// generation, so Count over [from, to) is one short range scan per (serving
// generation, hour) — 1 or 2 for a 60-minute query — and ScanCounts reads only
// the hours it asks for. Top lists are ordered by minute under (gen, window),
// so LatestTopMinute is a reverse seek.
//
// Generations: the records of every reserved generation are loaded at Open and
// kept in memory as a store.Serving (swapped atomically); CommitGeneration
// persists the commit in one synced write and then swaps the map, so the next
// read in this process sees it. Rows of superseded generations stay on disk
// until Collect, after a grace period for the readers still using them.
//
// Lifecycle (store.Lifecycle): raw clicks are ordered by event time, so raw
// retention is one range deletion of the whole hours before the cutoff,
// then a compaction of that span, which frees its disk space at once;
// aggregate retention and garbage collection delete whole hours of counts
// and ranges of top lists the same way, single keys only in a partly
// covered hour.
//
// Durability: writes are committed with pebble.NoSync by default. The WAL is
// still written (a process crash loses nothing); an OS crash or power cut
// loses what was written since the last Sync. A synced commit per batch would
// cap throughput at the disk's fsync rate, so writers that must not lose
// acknowledged rows call Sync (one fsync of the WAL) before they discard their
// source: the DB writer before it commits its Kafka offsets — rows written
// after the last Sync are re-read from the uncommitted offsets and rewritten
// (idempotent: raw clicks by key, aggregates merged). Set Options.Sync for
// fsync on every batch. Generation records are always synced.
//
// A failed write or fsync — a full disk above all — fails the store for good
// (fatal.go): every call returns an error wrapping store.ErrFailed ("disk
// full under <dir>: …"), never a panic, and a restart of the process
// recovers what was synced.
package pebblestore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"

	"github.com/adclick/adclick/io/store"
)

// Options tune the store. The zero value is the default.
type Options struct {
	// Sync fsyncs the WAL on every write batch (default false: NoSync and
	// an fsync per Store.Sync, see the package doc).
	Sync bool
	// CacheBytes is the block cache size (default 64 MiB).
	CacheBytes int64
	// MemTableBytes is the largest memtable (default 64 MiB). Memtables
	// live outside the Go heap; Pebble starts them at 256 KiB, doubles each
	// new one up to this size, and keeps the last flushed one for reuse, so
	// a store under steady writes holds about twice this in memory, reached
	// only after writing about twice this much.
	MemTableBytes int64
	// FS is the filesystem (default the OS's); tests simulate a power cut
	// with vfs.NewStrictMem.
	FS vfs.FS
	// OnFatal runs when Pebble fails for good in one of its own background
	// goroutines (fatal.go); it should end the process. The default logs
	// the error and exits with status 1. A failure in a call of ours is
	// returned by the call instead.
	OnFatal func(error)
}

// Store is a store.Store on one Pebble database directory. It is safe for
// concurrent use. A directory can be open in one Store at a time (Pebble
// locks it): share one Store within a process.
type Store struct {
	db      *pebble.DB
	wo      *pebble.WriteOptions
	closed  atomic.Bool
	failure *failure // set once Pebble failed for good (fatal.go)
	serving atomic.Pointer[store.Serving]

	mu          sync.Mutex // guards gens, maxGen, maxSeq, maxCommitAt; serializes generation record changes
	gens        map[store.Generation]store.GenRange
	maxGen      store.Generation
	maxSeq      int64
	maxCommitAt int64
	genKnow     atomic.Pointer[map[store.Generation]bool] // reserved generations (false: abandoned), read by Upsert without the lock

	collectMu  sync.Mutex   // one collection at a time
	rawHorizon atomic.Int64 // Unix ms; raw clicks before it are not stored (math.MinInt64: none)
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database in dir.
func Open(dir string, o Options) (*Store, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: pebblestore: empty path", store.ErrInvalid)
	}
	if o.CacheBytes <= 0 {
		o.CacheBytes = 64 << 20
	}
	if o.MemTableBytes <= 0 {
		o.MemTableBytes = 64 << 20
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if err := makeDurableDir(o.FS, dir); err != nil {
		return nil, fmt.Errorf("%w: pebblestore: %s: %w", store.ErrUnavailable, dir, err)
	}
	if err := upgradeMerger(o.FS, dir); err != nil {
		return nil, fmt.Errorf("%w: pebblestore: upgrading %s: %w", store.ErrUnavailable, dir, err)
	}
	fail := newFailure(dir, o.OnFatal)
	cache := pebble.NewCache(o.CacheBytes)
	defer cache.Unref()
	popts := &pebble.Options{
		Cache:                       cache,
		MemTableSize:                uint64(o.MemTableBytes),
		MemTableStopWritesThreshold: 4,
		L0CompactionThreshold:       4,
		L0StopWritesThreshold:       24,
		MaxConcurrentCompactions:    func() int { return 2 },
		Merger:                      merger,
		Logger:                      logger{fail},
		FS:                          writeFS{FS: o.FS, f: fail},
	}
	var db *pebble.DB
	err := fail.guard(func() (err error) {
		db, err = pebble.Open(dir, popts)
		return err
	})
	if err != nil {
		if ferr := fail.get(); ferr != nil {
			return nil, ferr // a full disk, say
		}
		return nil, fmt.Errorf("%w: pebblestore: open %s: %v", store.ErrUnavailable, dir, err)
	}
	s := &Store{db: db, wo: pebble.NoSync, failure: fail, gens: map[store.Generation]store.GenRange{}}
	if o.Sync {
		s.wo = pebble.Sync
	}
	err = s.loadGenerations()
	if err == nil {
		err = s.loadRawHorizon()
	}
	if err == nil {
		err = fail.get() // a flush that found the disk full since
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// makeDurableDir creates dir and fsyncs its ancestors: Pebble syncs the
// files and the directory it writes, not the directory's own entry, and a
// fresh store whose directory vanishes at a power cut loses everything it
// synced.
func makeDurableDir(fs vfs.FS, dir string) error {
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for d := dir; ; {
		p := fs.PathDir(d)
		if err := syncDir(fs, p); err != nil {
			return err
		}
		if p == d || p == "." || p == "/" {
			return nil
		}
		d = p
	}
}

func syncDir(fs vfs.FS, dir string) error {
	d, err := fs.OpenDir(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (s *Store) check(ctx context.Context) error {
	if err := s.failure.get(); err != nil {
		return err
	}
	if s.closed.Load() {
		return fmt.Errorf("%w: pebblestore: closed", store.ErrUnavailable)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: pebblestore: %w", store.ErrUnavailable, err)
	}
	return nil
}

func unavailable(op string, err error) error {
	if errors.Is(err, store.ErrInvalid) || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: pebblestore: %s: %v", store.ErrUnavailable, op, err)
}

// Ping reports whether the store is open.
func (s *Store) Ping(ctx context.Context) error { return s.check(ctx) }

// Sync fsyncs the WAL, which makes every write committed before it durable
// (the WAL is one sequential log; a rotated one was synced when it was
// closed).
func (s *Store) Sync(ctx context.Context) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := s.apply(func() error { return s.db.LogData(nil, pebble.Sync) }); err != nil {
		return unavailable("sync", err)
	}
	return nil
}

// apply runs a write into Pebble (a batch commit, a synced set, a range
// deletion, Sync's WAL record) under guard, so that a fatal write error
// comes back as the store's error rather than a panic.
func (s *Store) apply(op func() error) error {
	return s.failure.guard(op)
}

// Failed is closed when the store failed for good (fatal.go); Err then
// says why. Processes that only read and collect (serve) watch it to exit.
func (s *Store) Failed() <-chan struct{} { return s.failure.done }

// Err is the fatal error once Failed is closed, nil before.
func (s *Store) Err() error { return s.failure.get() }

// Close flushes and closes the database. A failed store returns its fatal
// error. Its database is closed as well unless the failure came from a
// goroutine of Pebble's own, which may still hold the database's locks.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if err := s.failure.get(); err != nil {
		if s.failure.locked.Load() {
			return err
		}
		return errors.Join(err, s.closeFailed())
	}
	return s.db.Close()
}

// closeFailed closes the database of a store that failed for good, which
// releases its directory lock and stops its goroutines. Pebble's state is
// undefined after a failure, so closing is given a bounded time and a
// panic while closing is reported, not raised: a process on its way out
// must not hang on it.
func (s *Store) closeFailed() error {
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("pebblestore: closing after the failure: %v", r)
			}
		}()
		done <- s.db.Close()
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		return errors.New("pebblestore: closing after the failure did not finish in 10 s; left open")
	}
}

// DB exposes the database (for benchmarks and metrics).
func (s *Store) DB() *pebble.DB { return s.db }
