// Package backend opens the store a Config names: the factory every component
// uses, Beam DoFns (which carry only a Config and open the store in Setup) and
// plain services alike. It is wiring only: it maps a Config onto a backend's
// options and shares embedded Pebble stores within the process.
package backend

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/io/store/cassandrastore"
	"github.com/adclick/adclick/io/store/pebblestore"
)

// Backend names.
const (
	Pebble    = "pebble"
	Cassandra = "cassandra"
)

// Config names a store: what a serializable DoFn carries instead of a
// connection. Only exported, plain fields, so Beam can encode it.
type Config struct {
	Backend string // Pebble or Cassandra

	// Pebble: the database directory; Sync fsyncs every batch;
	// MemTableBytes bounds its memtables (0: pebblestore's default).
	Path          string
	Sync          bool
	MemTableBytes int64

	// Cassandra: contact points (host or host:port), keyspace (default
	// adclick), consistency levels (default LOCAL_QUORUM).
	Hosts                             []string
	Keyspace                          string
	ReadConsistency, WriteConsistency string
	// Cassandra's login and TLS. A Config travels into pipelines (a DoFn
	// carries it, and Beam encodes it as JSON into the job), so the
	// password does not: CassandraPassword is left out of the encoding, and
	// Open, given none, reads CassandraPasswordFile, else the environment
	// variable EnvCassandraPassword of the process that opens the store (a
	// worker's, on a distributed runner). File names travel; their contents
	// are read where the store opens.
	CassandraUsername     string
	CassandraPassword     cassandrastore.Secret `json:"-"`
	CassandraPasswordFile string
	CassandraTLS          cassandrastore.TLSOptions

	// RawRetention: how long raw clicks are kept after their event time
	// (default store.DefaultRawRetention). Cassandra writes raw rows with
	// the TTL that expires them then; on Pebble, a lifecycle run
	// (io/store/lifecycle) deletes them.
	RawRetention time.Duration
}

// EnvCassandraPassword is where Open finds the Cassandra password when the
// Config names a user, carries no password and names no password file.
const EnvCassandraPassword = "ADCLICK_CASSANDRA_PASSWORD"

// Validate checks the config without opening anything.
func (c Config) Validate() error {
	switch c.Backend {
	case Pebble:
		if c.Path == "" {
			return fmt.Errorf("%w: store: pebble store needs a path", store.ErrInvalid)
		}
	case Cassandra:
		if len(c.Hosts) == 0 {
			return fmt.Errorf("%w: store: cassandra store needs hosts", store.ErrInvalid)
		}
	default:
		return fmt.Errorf("%w: store: unknown store backend %q (want %s or %s)", store.ErrInvalid, c.Backend, Pebble, Cassandra)
	}
	return nil
}

// Open opens the store cfg names. reg receives backend metrics (nil: none).
//
// An embedded Pebble directory can be open only once per process (Pebble
// locks it), yet the all-in-one runs the query API and several pipeline
// DoFns — each opening "the store" in its own Setup — in one process. So
// Pebble stores are shared through a process-wide, reference-counted table
// keyed by the directory's absolute path: the first Open opens it, each Close
// releases one reference, the last closes it. This is the only process-level
// shared state of the stores; Cassandra opens a session per call.
func Open(ctx context.Context, cfg Config, reg prometheus.Registerer) (store.Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Backend == Pebble {
		return openPebble(cfg)
	}
	sec, err := cfg.CassandraSecurity()
	if err != nil {
		return nil, err
	}
	return cassandrastore.Open(ctx, cassandrastore.Options{
		Hosts: cfg.Hosts, Keyspace: cfg.Keyspace,
		ReadConsistency: cfg.ReadConsistency, WriteConsistency: cfg.WriteConsistency,
		RawRetention: cfg.RawRetention, Registerer: reg, Security: sec,
	})
}

// CassandraSecurity returns the login and TLS of the Config with the password
// resolved (the value, else the file, else EnvCassandraPassword) and the TLS
// files read: the same check Open makes, for a command to make at its start.
// Errors wrap store.ErrInvalid and never hold the password.
func (c Config) CassandraSecurity() (cassandrastore.Security, error) {
	sec := cassandrastore.Security{Username: c.CassandraUsername, Password: c.CassandraPassword, TLS: c.CassandraTLS}
	if sec.Password == "" && c.CassandraPasswordFile != "" {
		pw, err := ReadPasswordFile(c.CassandraPasswordFile)
		if err != nil {
			return sec, err
		}
		sec.Password = pw
	}
	if sec.Password == "" && sec.Username != "" {
		sec.Password = cassandrastore.Secret(os.Getenv(EnvCassandraPassword))
	}
	if err := sec.Validate(); err != nil {
		return sec, err
	}
	return sec, nil
}

// ReadPasswordFile reads a password: the file's first line, without its line
// ending (an editor's or echo's trailing newline is not part of it). An
// empty one is an error.
func ReadPasswordFile(path string) (cassandrastore.Secret, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%w: store: password file: %w", store.ErrInvalid, err)
	}
	pw, _, _ := strings.Cut(string(b), "\n")
	pw = strings.TrimSuffix(pw, "\r")
	if pw == "" {
		return "", fmt.Errorf("%w: store: password file %s is empty", store.ErrInvalid, path)
	}
	return cassandrastore.Secret(pw), nil
}

type pebbleEntry struct {
	st   *pebblestore.Store
	refs int
}

var pebbles = struct {
	sync.Mutex
	m map[string]*pebbleEntry
}{m: map[string]*pebbleEntry{}}

func openPebble(cfg Config) (store.Store, error) {
	path, err := filepath.Abs(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("%w: store: pebble path %q: %v", store.ErrInvalid, cfg.Path, err)
	}
	pebbles.Lock()
	defer pebbles.Unlock()
	e := pebbles.m[path]
	if e == nil {
		st, err := pebblestore.Open(path, pebblestore.Options{Sync: cfg.Sync, MemTableBytes: cfg.MemTableBytes})
		if err != nil {
			return nil, err
		}
		e = &pebbleEntry{st: st}
		pebbles.m[path] = e
	}
	e.refs++
	return &sharedPebble{Store: e.st, path: path}, nil
}

// sharedPebble is one reference to a shared Pebble store.
type sharedPebble struct {
	*pebblestore.Store
	path string
	once sync.Once
}

// Close releases this reference; the last one closes the database.
func (s *sharedPebble) Close() error {
	var err error
	s.once.Do(func() {
		pebbles.Lock()
		defer pebbles.Unlock()
		e := pebbles.m[s.path]
		if e == nil {
			return
		}
		if e.refs--; e.refs == 0 {
			delete(pebbles.m, s.path)
			err = e.st.Close()
		}
	})
	return err
}
