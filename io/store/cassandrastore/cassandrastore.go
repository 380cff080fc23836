// Package cassandrastore is the production store.Store on Apache Cassandra,
// through github.com/gocql/gocql: a backend, with its schema and the
// migration that applies it.
//
// The schema (schema.cql, embedded and applied by Migrate / `adclick
// migrate`) follows the design's data model with partitions bounded in size:
// raw clicks by ((ad_id, hour), ts, event_id), each row with a TTL of the
// raw retention (default 30 days, configurable); counts by ((gen,
// ad_id, filter_id, day), minute), top lists by ((gen, window_size, day),
// minute). Small index tables name the
// partitions a time range has (raw_partitions, count_series, top_days), so no
// read scans the whole table.
//
// Every statement is prepared (gocql prepares and caches each statement with
// bind values on first use) and marked idempotent; requests go token-aware to
// a replica of their partition; gocql retries timeouts with exponential
// backoff; consistency is configurable (default LOCAL_QUORUM for both reads
// and writes, so a read sees every acknowledged write).
//
// Failure behaviour: a write that fails (node down, timeout, no connection)
// is retried with exponential backoff up to Options.WriteRetries times, each
// retry counted in adclick_store_retries_total; when retries run out the
// error wraps store.ErrUnavailable and is counted in
// adclick_store_failures_total. Nothing is dropped silently. A read that does
// not answer within Options.ReadTimeout fails with store.ErrUnavailable and a
// message that says it timed out.
//
// Lifecycle (store.Lifecycle): raw rows expire by their TTL, counted from
// their write; Collect deletes, by event time, the whole raw partitions of
// the hours before a horizon it records in the lifecycle table, and aggregate
// partitions or clustering ranges for aggregate retention and garbage
// collection, finding them through the index tables.
//
// Generations live in one small partition (generations). Reads consult an
// in-process copy refreshed at most every Options.GenerationCacheTTL (default
// 1 s); NewGeneration and CommitGeneration (lightweight transactions) update
// that copy before they return, so the committing process's next read sees
// the switch, and other processes see it within the TTL.
package cassandrastore

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gocql/gocql"

	"github.com/adclick/adclick/io/store"
)

// Store is a store.Store on a Cassandra keyspace. Safe for concurrent use.
type Store struct {
	s            *gocql.Session
	o            Options
	rcons, wcons gocql.Consistency
	m            *storeMetrics

	genMu   sync.Mutex
	serving atomic.Pointer[servingState]

	collectMu     sync.Mutex                  // one collection at a time in this process
	rawHorizon    atomic.Int64                // Unix ms of the last raw horizon read or set (math.MinInt64: none)
	noCollectedAt atomic.Bool                 // the keyspace predates generations.collected_at
	digests       atomic.Pointer[digestState] // whether counts.digest exists (digest.go)
}

// servingState is the in-process copy of the generations partition.
type servingState struct {
	sv    *store.Serving
	gens  map[store.Generation]store.GenRange
	at    time.Time
	maxSq int64
}

var _ store.Store = (*Store)(nil)

// Open connects to the keyspace, which Migrate must have created.
func Open(ctx context.Context, o Options) (*Store, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	rc, err := parseCons(o.ReadConsistency)
	if err != nil {
		return nil, err
	}
	wc, err := parseCons(o.WriteConsistency)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	c, err := newCluster(o)
	if err != nil {
		return nil, err
	}
	c.Keyspace = o.Keyspace
	c.Consistency = rc
	sess, err := c.CreateSession()
	if err != nil {
		return nil, connectErr("open keyspace "+o.Keyspace, o, err)
	}
	s := &Store{s: sess, o: o, rcons: rc, wcons: wc, m: m}
	s.rawHorizon.Store(math.MinInt64)
	if _, err := s.loadGenerations(ctx); err != nil {
		sess.Close()
		return nil, err
	}
	if _, err := s.RawHorizon(ctx); err != nil {
		sess.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the session.
func (s *Store) Close() error {
	s.s.Close()
	return nil
}

// Sync has nothing to do: a write returns only once the write consistency's
// replicas acknowledged it, and what survives their power cut is decided by
// the cluster (replication, commitlog_sync), not by anything a client can
// flush.
func (s *Store) Sync(ctx context.Context) error { return ctxDone(ctx) }

// Ping runs a trivial query.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.o.ReadTimeout)
	defer cancel()
	var v string
	if err := s.s.Query("SELECT release_version FROM system.local").WithContext(ctx).Consistency(gocql.One).Scan(&v); err != nil {
		return s.readErr("ping", ctx, err)
	}
	return nil
}
