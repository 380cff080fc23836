// Package store is the storage contract of adclick: raw clicks (the source of
// truth for recalculation) and aggregation results (what the query API serves),
// behind one interface with two backends — Cassandra for production
// (io/store/cassandrastore) and an embedded Pebble store for the all-in-one
// (io/store/pebblestore) — that both pass the conformance suite in
// io/store/storetest. It is contract code only: the interfaces, errors,
// argument checks and the encodings and generation bookkeeping the backends
// share; it does no I/O of its own.
//
// Semantics every backend keeps:
//   - Raw writes are idempotent by (ad_id, event time, event_id): writing the same
//     click twice stores it once.
//   - Aggregate writes are overwrites by key (result.Record.Key): results are
//     accumulating, so the newest write for a key is the value (docs/spec.md §2).
//   - Generations: a recalculation writes a time range into a fresh generation
//     and then switches reads of that range to it in one step, so readers see
//     either the old values or the new ones for the whole range, never a mix.
//     Top lists have their own range, which may end later than the counts'
//     (GenRange); the one step switches both.
//     Generation 0 is the live one the streaming job writes.
//   - Arguments are validated before anything is written; a bad one fails the
//     whole call with ErrInvalid: ids must be 1–256 bytes of UTF-8, minutes
//     and range ends minute-aligned (Unix seconds), ranges from <= to
//     (from == to is an empty range, not an error), window sizes positive,
//     counts non-negative, click times within years 2000–2100.
//   - Upsert into a generation that NewGeneration did not reserve is
//     ErrInvalid; CommitGeneration of an unknown one is ErrNotFound, of
//     LiveGeneration ErrInvalid, and of a committed one a no-op. Where the
//     ranges of committed generations overlap, the latest commit serves.
//   - A backend that cannot be reached, or does not answer in time, returns
//     an error wrapping ErrUnavailable (writes after retrying with backoff);
//     one that failed for good, ErrFailed (which wraps ErrUnavailable).
//   - Lifecycle (lifecycle.go): raw retention by whole event-time hours,
//     aggregate retention by whole UTC days, and garbage collection of the
//     rows a commit replaced once a grace period has passed. Collection
//     deletes only rows nothing serves, so one cut short loses nothing.
//   - Durability: an acknowledged write survives a crash of this process. It
//     survives an OS crash or power cut once Sync has returned after it (the
//     embedded store fsyncs there; Cassandra's writes are as durable as its
//     replicas make them when they acknowledge). Whoever discards the
//     source of a write — the DB writer committing a Kafka offset — calls
//     Sync first.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
)

// Errors callers can test with errors.Is.
var (
	ErrNotFound    = errors.New("store: not found")
	ErrUnavailable = errors.New("store: unavailable") // backend down or timed out
	ErrInvalid     = errors.New("store: invalid argument")
	// ErrFailed: the backend failed for good (the embedded store after a
	// fatal write error such as a full disk); every later call returns it.
	// Retrying is pointless: the process should exit, and its restart
	// recovers what was synced from disk. It wraps ErrUnavailable.
	ErrFailed = fmt.Errorf("%w (failed for good)", ErrUnavailable)
)

// Generation identifies one set of aggregate rows. LiveGeneration is the one
// the streaming job writes; recalculations create higher ones.
type Generation int64

// LiveGeneration is the streaming job's generation.
const LiveGeneration Generation = 0

// DefaultRawRetention is how long raw clicks are kept after their event time
// unless configured otherwise (docs/spec.md §5).
const DefaultRawRetention = 30 * 24 * time.Hour

// Shard is one independently readable part of a raw-click time range, for
// parallel reads (a Beam restriction). Backends encode what they need in it.
type Shard struct {
	From, To time.Time // event-time range [From, To)
	Token    []byte    // backend-specific position (token range, key range)
}

// RawStore keeps every valid click.
type RawStore interface {
	// WriteRaw stores clicks; idempotent.
	WriteRaw(ctx context.Context, clicks []click.Click) error
	// RawShards splits the event-time range [from, to) into about n shards that
	// together cover every stored click of the range exactly once.
	RawShards(ctx context.Context, from, to time.Time, n int) ([]Shard, error)
	// ReadRaw calls fn for every click of the shard, in no particular order.
	// It stops at and returns fn's first error.
	ReadRaw(ctx context.Context, shard Shard, fn func(click.Click) error) error
}

// AggregateStore keeps aggregation results.
type AggregateStore interface {
	// Upsert overwrites each record's key in generation gen.
	Upsert(ctx context.Context, gen Generation, recs []result.Record) error
	// Merge is Upsert for the streaming job's monotone results: a count
	// keeps the larger of the stored and the new value, a top list is
	// MergeTop(stored, new). A streaming job that restarts recomputes some
	// panes from part of their data; merging keeps those from lowering what
	// is stored. Within one generation, use either Upsert or Merge.
	Merge(ctx context.Context, gen Generation, recs []result.Record) error

	// Count sums the per-minute counts of adID over the minutes in [from, to)
	// (Unix seconds, minute-aligned), from the generation serving each minute.
	// filterID "" means unfiltered.
	Count(ctx context.Context, adID, filterID string, from, to int64) (int64, error)
	// Top returns the stored top list for windowSize at minute, or ErrNotFound.
	Top(ctx context.Context, windowSize int, minute int64) (result.Top, error)
	// LatestTopMinute is the newest minute with a top list for windowSize, or
	// ErrNotFound.
	LatestTopMinute(ctx context.Context, windowSize int) (int64, error)
	// ScanCounts calls fn for every count and filtered-count record whose
	// minute is in [from, to), as served (after generation switches). For
	// reconciliation.
	ScanCounts(ctx context.Context, from, to int64, fn func(result.Record) error) error

	// NewGeneration reserves a fresh generation for a recalculation of the
	// minutes [from, to): it will serve their counts and filtered counts,
	// and the top lists of the window ends [from, topTo) — topTo ≥ to, as a
	// window ending up to the longest window − 1 min after to still sums
	// recalculated minutes (see GenRange). Nothing reads it until
	// CommitGeneration.
	NewGeneration(ctx context.Context, from, to, topTo int64) (Generation, error)
	// CommitGeneration atomically makes gen serve both of its ranges.
	CommitGeneration(ctx context.Context, gen Generation) error
}

// CountDigester is Count with the digest of the counted event ids
// (result.Digest): the sum of the minutes' stored digests, unknown when any
// minute's is. Both backends implement it; callers that may hold another
// AggregateStore check for it.
type CountDigester interface {
	CountDigest(ctx context.Context, adID, filterID string, from, to int64) (int64, result.Digest, error)
}

// AdRawReader reads one ad's raw clicks with event time in [from, to), in
// no particular order, stopping at fn's first error. A reader of one ad
// (services/explain) would otherwise read every ad's clicks of the range;
// Cassandra keeps an ad's clicks in its own partitions. Both backends
// implement it.
type AdRawReader interface {
	ReadRawAd(ctx context.Context, adID string, from, to time.Time, fn func(click.Click) error) error
}

// CountSegmenter says which generation serves each minute's counts: the runs
// of [from, to) (Unix seconds, minute-aligned) served by one generation
// each, in order, covering the range (LiveGeneration where no replay does).
// A reader that must know whether a minute's stored count came from the
// streaming job or from a batch recount (services/explain: too-late clicks)
// asks it. Both backends implement it.
type CountSegmenter interface {
	CountSegments(ctx context.Context, from, to int64) ([]Segment, error)
}

// TooLateStore keeps the streaming job's too-late decisions
// (result.TooLate): per generation, ad and minute, the set of event-id
// hashes of the clicks left out as too late. AddTooLate adds to the set (a
// union: writing a record again, or its hashes in other records, changes
// nothing), so the DB writer may re-deliver. The rows expire with the raw
// clicks they name (raw retention). TooLate returns the set in no
// particular order, empty when nothing was recorded. Both backends
// implement it; these records never go to Upsert or Merge.
type TooLateStore interface {
	AddTooLate(ctx context.Context, gen Generation, recs []result.TooLate) error
	TooLate(ctx context.Context, gen Generation, adID string, minute int64) ([]result.Digest, error)
}

// Store is both halves plus lifecycle.
type Store interface {
	RawStore
	AggregateStore
	// Ping reports whether the backend is reachable (for /readyz).
	Ping(ctx context.Context) error
	// Sync makes every write acknowledged before it durable against an OS
	// crash or power cut: one fsync (or nothing, where acknowledging already
	// meant that), however many writes it covers.
	Sync(ctx context.Context) error
	Close() error
}
