package pebblestore

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/cockroachdb/pebble/vfs"

	"github.com/adclick/adclick/io/store"
)

// Fatal errors: a full disk, above all. Pebble cannot continue after a
// failed write-ahead-log write: its WAL writer keeps the error for good, and
// the next commit either reports it through the logger's Fatalf (which must
// not return) or panics with it while holding the commit pipeline's lock, so
// every later commit would block for ever. Such a store is done: the process
// must end, and its restart recovers from disk (the WAL replay Pebble does at
// every Open); what was synced is there, what was not is re-read from Kafka
// by the writers, which commit offsets only after a Sync.
//
// So the store fails first and cleanly: its filesystem (writeFS) marks it
// failed at the first write or sync that fails (ENOSPC: "disk full under
// <dir>"), in whichever goroutine — before Pebble's commit path meets the
// broken WAL writer — and every call from then on returns the error
// (wrapping store.ErrFailed) without touching Pebble again. The DB writer
// exits with it, its supervisor restarts it once space is back. A write
// failing while flushing or compacting fails the store too, although Pebble
// would retry those: a disk too full for a compaction is one commit away
// from a full WAL, and saying so now is clearer.
//
// What remains is caught as well: a call already inside Pebble when the
// store failed (failure.guard turns Pebble's Fatalf and its panics into the
// call's error), and a Fatalf in one of Pebble's own goroutines (a MANIFEST
// write failing in a flush), where nothing of ours can return the error and
// the goroutine holds Pebble's locks: Options.OnFatal runs, by default
// logging the error and ending the process with status 1 — what Pebble's own
// default logger does, with a message that says why.

// failure is a store's fatal error, set once. It exists before the
// database does (Pebble's logger and filesystem need it at Open).
type failure struct {
	dir     string
	onFatal func(error)
	once    sync.Once
	err     error
	done    chan struct{} // closed when err is set
	// locked: a goroutine failed inside Pebble holding its locks (parked
	// in Fatalf, or unwound by a panic in the commit pipeline), so the
	// database must not be closed: Close would wait for them for ever.
	locked atomic.Bool
}

func newFailure(dir string, onFatal func(error)) *failure {
	if onFatal == nil {
		onFatal = exitOnFatal
	}
	return &failure{dir: dir, onFatal: onFatal, done: make(chan struct{})}
}

// set records the first fatal error and returns the recorded one.
func (f *failure) set(err error) error {
	f.once.Do(func() {
		f.err = err
		close(f.done)
	})
	<-f.done
	return f.err
}

// get returns the fatal error, nil while there is none.
func (f *failure) get() error {
	select {
	case <-f.done:
		return f.err
	default:
		return nil
	}
}

// fatal records msg as the store's failure: one that says "disk full" when
// the cause is ENOSPC, since that is the one an operator can act on.
func (f *failure) fatal(msg string, cause error) error {
	what := "fatal storage error"
	if errors.Is(cause, syscall.ENOSPC) || errors.Is(cause, syscall.EDQUOT) || strings.Contains(msg, syscall.ENOSPC.Error()) {
		what = "disk full"
	}
	return f.set(fmt.Errorf("%w: pebblestore: %s under %s: %s (the store cannot continue: restart the process once the cause is fixed; synced writes are kept)",
		store.ErrFailed, what, f.dir, msg))
}

// exitOnFatal is the default Options.OnFatal.
func exitOnFatal(err error) {
	slog.Error("the embedded store failed in a background task; exiting", "err", err)
	os.Exit(1)
}

// fatalPanic carries a fatal error from Fatalf to guard.
type fatalPanic struct{ err error }

// logger is the store's Pebble logger: quiet, except for fatal errors.
type logger struct{ f *failure }

func (logger) Infof(string, ...any)  {}
func (logger) Errorf(string, ...any) {}

// Fatalf records the failure and does not return (see the comment above).
func (l logger) Fatalf(format string, args ...any) {
	var cause error
	for _, a := range args {
		if err, ok := a.(error); ok {
			cause = err
		}
	}
	err := l.f.fatal(fmt.Sprintf(format, args...), cause)
	if underGuard() {
		panic(fatalPanic{err})
	}
	l.f.locked.Store(true)
	l.f.onFatal(err)
	select {} // Pebble's state is undefined past this point
}

// guard runs op, a call into Pebble, unless the store failed already, and
// returns a fatal error Pebble reported during it as op's error. Pebble
// also panics outright with the error when a commit finds its WAL writer
// failed by an earlier asynchronous write (DB.commitWrite), its commit
// pipeline's lock held: that is the same failure, recorded as one. A
// runtime error (a bug) is raised again.
func (f *failure) guard(op func() error) (err error) {
	if err := f.get(); err != nil {
		return err
	}
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		switch r := r.(type) {
		case fatalPanic:
			err = r.err
		case runtime.Error:
			panic(r)
		default:
			f.locked.Store(true)
			cause, _ := r.(error)
			err = f.fatal(fmt.Sprintf("pebble: panic: %v", r), cause)
		}
	}()
	return op()
}

// underGuard says whether the calling goroutine runs inside guard, which
// will recover a fatalPanic; Pebble's own goroutines do not.
func underGuard() bool {
	name := runtime.FuncForPC(reflect.ValueOf((*failure).guard).Pointer()).Name()
	pcs := make([]uintptr, 256)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs)])
	for {
		fr, more := frames.Next()
		if fr.Function == name {
			return true
		}
		if !more {
			return false
		}
	}
}

// writeFS is the store's filesystem: it fails the store at the first write
// or sync that returns an error (see the comment above): ENOSPC or EDQUOT
// above all, or EIO — after a failed fsync the kernel may have dropped the
// dirty pages, so carrying on could lose acknowledged writes.
type writeFS struct {
	vfs.FS
	f *failure
}

func (fs writeFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		// Only the errors of a disk that cannot take more: an open may fail
		// for reasons Pebble expects and handles.
		for _, e := range []error{syscall.ENOSPC, syscall.EDQUOT, syscall.EIO, syscall.EROFS} {
			if errors.Is(err, e) {
				return nil, fs.f.writeFailed(err)
			}
		}
		return nil, err
	}
	return writeFile{File: f, f: fs.f}, nil
}

func (fs writeFS) Create(name string) (vfs.File, error) {
	f, err := fs.FS.Create(name)
	return fs.wrap(f, err)
}

func (fs writeFS) OpenReadWrite(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, opts...)
	return fs.wrap(f, err)
}

func (fs writeFS) ReuseForWrite(oldname, newname string) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname)
	return fs.wrap(f, err)
}

// writeFailed fails the store with a write error and returns it.
func (f *failure) writeFailed(err error) error {
	if err != nil {
		f.fatal(err.Error(), err)
	}
	return err
}

type writeFile struct {
	vfs.File
	f *failure
}

func (f writeFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	return n, f.f.writeFailed(err)
}

func (f writeFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.File.WriteAt(p, off)
	return n, f.f.writeFailed(err)
}

func (f writeFile) Sync() error     { return f.f.writeFailed(f.File.Sync()) }
func (f writeFile) SyncData() error { return f.f.writeFailed(f.File.SyncData()) }

func (f writeFile) SyncTo(length int64) (bool, error) {
	full, err := f.File.SyncTo(length)
	return full, f.f.writeFailed(err)
}
