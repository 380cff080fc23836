// Package pebblestore is the embedded store.Store of the all-in-one, on
// github.com/cockroachdb/pebble (an LSM key-value store in pure Go: no Java,
// no server, crash-safe through its write-ahead log).
//
// Key layout (all integers big-endian; signed ones with the sign bit flipped so
// byte order is numeric order; strings behind a 2-byte length):
//
//	r | ts ms | ad | event_id                       raw click → other attributes
//	c | gen | hour | ad | filter | minute           count → uvarint (filter "" = unfiltered)
//	t | gen | window | minute                       top list
//	m | g | gen                                     generation record (from, to, commit seq)
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
// (a concurrent reader may still be using them); they are not collected.
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
package pebblestore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
)

// Options tune the store. The zero value is the default.
type Options struct {
	// Sync fsyncs the WAL on every write batch (default false: NoSync and
	// an fsync per Store.Sync, see the package doc).
	Sync bool
	// CacheBytes is the block cache size (default 64 MiB).
	CacheBytes int64
	// FS is the filesystem (default the OS's); tests simulate a power cut
	// with vfs.NewStrictMem.
	FS vfs.FS
}

// Store is a store.Store on one Pebble database directory. It is safe for
// concurrent use. A directory can be open in one Store at a time (Pebble
// locks it): share one Store within a process.
type Store struct {
	db      *pebble.DB
	wo      *pebble.WriteOptions
	closed  atomic.Bool
	serving atomic.Pointer[store.Serving]

	mu      sync.Mutex // guards gens, maxGen, maxSeq; serializes NewGeneration/CommitGeneration
	gens    map[store.Generation]store.GenRange
	maxGen  store.Generation
	maxSeq  int64
	genKnow atomic.Pointer[map[store.Generation]bool] // reserved generations, read by Upsert without the lock
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
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if err := makeDurableDir(o.FS, dir); err != nil {
		return nil, fmt.Errorf("%w: pebblestore: %s: %w", store.ErrUnavailable, dir, err)
	}
	cache := pebble.NewCache(o.CacheBytes)
	defer cache.Unref()
	popts := &pebble.Options{
		Cache:                       cache,
		MemTableSize:                64 << 20,
		MemTableStopWritesThreshold: 4,
		L0CompactionThreshold:       4,
		L0StopWritesThreshold:       24,
		MaxConcurrentCompactions:    func() int { return 2 },
		Logger:                      quietLogger{},
		FS:                          o.FS,
	}
	db, err := pebble.Open(dir, popts)
	if err != nil {
		return nil, fmt.Errorf("%w: pebblestore: open %s: %v", store.ErrUnavailable, dir, err)
	}
	s := &Store{db: db, wo: pebble.NoSync, gens: map[store.Generation]store.GenRange{}}
	if o.Sync {
		s.wo = pebble.Sync
	}
	if err := s.loadGenerations(); err != nil {
		db.Close()
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

type quietLogger struct{}

func (quietLogger) Infof(string, ...interface{})  {}
func (quietLogger) Errorf(string, ...interface{}) {}
func (quietLogger) Fatalf(format string, args ...interface{}) {
	panic(fmt.Sprintf("pebble: "+format, args...))
}

// ---- key encoding ----

const (
	pRaw   = 'r'
	pCount = 'c'
	pTop   = 't'
	pMeta  = 'm'
)

func putI64(b []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(b, uint64(v)^(1<<63))
}

func getI64(b []byte) int64 { return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)) }

func putStr(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func getStr(b []byte) (string, []byte, bool) {
	if len(b) < 2 {
		return "", nil, false
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+n {
		return "", nil, false
	}
	return string(b[2 : 2+n]), b[2+n:], true
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func hourOf(minute int64) int64 { return floorDiv(minute, 3600) * 3600 }

func rawKey(b []byte, c *click.Click) []byte {
	b = append(b, pRaw)
	b = putI64(b, c.Time)
	b = putStr(b, c.AdID)
	return append(b, c.EventID...)
}

func rawTimeKey(ms int64) []byte { return putI64([]byte{pRaw}, ms) }

func rawValue(b []byte, c *click.Click) []byte {
	for _, s := range [...]string{c.UserID, c.IP, c.Country, c.Device, c.AdFormat} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

func decodeRaw(k, v []byte) (click.Click, error) {
	var c click.Click
	if len(k) < 9 {
		return c, errors.New("short raw key")
	}
	c.Time = getI64(k[1:9])
	ad, rest, ok := getStr(k[9:])
	if !ok {
		return c, errors.New("bad raw key")
	}
	c.AdID, c.EventID = ad, string(rest)
	fields := [...]*string{&c.UserID, &c.IP, &c.Country, &c.Device, &c.AdFormat}
	for _, f := range fields {
		n, w := binary.Uvarint(v)
		if w <= 0 || uint64(len(v)-w) < n {
			return c, errors.New("bad raw value")
		}
		*f = string(v[w : w+int(n)])
		v = v[w+int(n):]
	}
	return c, nil
}

func countPrefix(b []byte, gen store.Generation, hour int64) []byte {
	b = append(b, pCount)
	b = putI64(b, int64(gen))
	return putI64(b, hour)
}

func countKey(b []byte, gen store.Generation, ad, filter string, minute int64) []byte {
	b = countPrefix(b, gen, hourOf(minute))
	b = putStr(b, ad)
	b = putStr(b, filter)
	return putI64(b, minute)
}

func topKey(b []byte, gen store.Generation, window int, minute int64) []byte {
	b = topPrefix(b, gen, window)
	return putI64(b, minute)
}

func topPrefix(b []byte, gen store.Generation, window int) []byte {
	b = append(b, pTop)
	b = putI64(b, int64(gen))
	return binary.BigEndian.AppendUint32(b, uint32(window))
}

func genKey(gen store.Generation) []byte { return putI64([]byte{pMeta, 'g'}, int64(gen)) }

// prefixEnd is the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// ---- lifecycle ----

func (s *Store) check(ctx context.Context) error {
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
	if err := s.db.LogData(nil, pebble.Sync); err != nil {
		return unavailable("sync", err)
	}
	return nil
}

// Close flushes and closes the database.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.db.Close()
}

// DB exposes the database (for benchmarks and metrics).
func (s *Store) DB() *pebble.DB { return s.db }

// ---- raw ----

// WriteRaw stores clicks in one batch; a click already stored is overwritten
// with itself.
func (s *Store) WriteRaw(ctx context.Context, clicks []click.Click) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	for i := range clicks {
		if err := store.CheckClick(&clicks[i]); err != nil {
			return err
		}
	}
	if len(clicks) == 0 {
		return nil
	}
	b := s.db.NewBatch()
	defer b.Close()
	var kb, vb []byte
	for i := range clicks {
		c := &clicks[i]
		kb = rawKey(kb[:0], c)
		vb = rawValue(vb[:0], c)
		if err := b.Set(kb, vb, nil); err != nil {
			return unavailable("write raw", err)
		}
	}
	if err := b.Commit(s.wo); err != nil {
		return unavailable("write raw", err)
	}
	return nil
}

// maxShards bounds RawShards' n.
const maxShards = 1 << 16

// ceilMS is the first whole millisecond at or after t.
func ceilMS(t time.Time) int64 {
	ms := t.UnixMilli()
	if t.Sub(time.UnixMilli(ms)) > 0 {
		ms++
	}
	return ms
}

// RawShards cuts [from, to) into at most n contiguous event-time slices of
// whole milliseconds. Token is unused: the slice's time range is its key range.
func (s *Store) RawShards(ctx context.Context, from, to time.Time, n int) ([]store.Shard, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	return TimeShards(from, to, n)
}

// TimeShards splits [from, to) into at most n slices of whole milliseconds.
func TimeShards(from, to time.Time, n int) ([]store.Shard, error) {
	if n < 1 {
		return nil, fmt.Errorf("%w: %d shards", store.ErrInvalid, n)
	}
	if to.Before(from) {
		return nil, fmt.Errorf("%w: time range ends before it starts", store.ErrInvalid)
	}
	lo, hi := ceilMS(from), ceilMS(to)
	if lo >= hi {
		return []store.Shard{}, nil
	}
	n = min(n, maxShards)
	if span := hi - lo; span < int64(n) {
		n = int(span)
	}
	span := uint64(hi - lo)
	out := make([]store.Shard, 0, n)
	prev := lo
	for i := 1; i <= n; i++ {
		next := hi
		if i < n {
			next = lo + int64(span/uint64(n)*uint64(i)+span%uint64(n)*uint64(i)/uint64(n))
		}
		out = append(out, store.Shard{From: time.UnixMilli(prev).UTC(), To: time.UnixMilli(next).UTC()})
		prev = next
	}
	return out, nil
}

// ReadRaw calls fn for every click with event time in the shard's range.
func (s *Store) ReadRaw(ctx context.Context, shard store.Shard, fn func(click.Click) error) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	lo, hi := ceilMS(shard.From), ceilMS(shard.To)
	if lo > hi {
		return fmt.Errorf("%w: shard ends before it starts", store.ErrInvalid)
	}
	if lo == hi {
		return nil
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: rawTimeKey(lo), UpperBound: rawTimeKey(hi)})
	if err != nil {
		return unavailable("read raw", err)
	}
	defer it.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		c, err := decodeRaw(it.Key(), it.Value())
		if err != nil {
			return unavailable("read raw", err)
		}
		if err := fn(c); err != nil {
			return err
		}
		if n++; n%4096 == 0 {
			if err := s.check(ctx); err != nil {
				return err
			}
		}
	}
	if err := it.Error(); err != nil {
		return unavailable("read raw", err)
	}
	return nil
}

// ---- aggregates ----

func (s *Store) writable(gen store.Generation) error {
	if gen == store.LiveGeneration {
		return nil
	}
	if known := s.genKnow.Load(); known != nil && (*known)[gen] {
		return nil
	}
	return fmt.Errorf("%w: generation %d was not reserved with NewGeneration", store.ErrInvalid, gen)
}

// Upsert writes recs into gen in one batch, overwriting by key.
func (s *Store) Upsert(ctx context.Context, gen store.Generation, recs []result.Record) error {
	return s.write(ctx, gen, recs, false)
}

// Merge writes recs into gen in one batch, merging with what is stored
// (store.AggregateStore.Merge): one read per key, from the batch first.
func (s *Store) Merge(ctx context.Context, gen store.Generation, recs []result.Record) error {
	return s.write(ctx, gen, recs, true)
}

func (s *Store) write(ctx context.Context, gen store.Generation, recs []result.Record, merge bool) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := s.writable(gen); err != nil {
		return err
	}
	for _, r := range recs {
		if err := store.CheckRecord(r); err != nil {
			return err
		}
	}
	if len(recs) == 0 {
		return nil
	}
	var b *pebble.Batch
	if merge {
		b = s.db.NewIndexedBatch() // reads see the batch's own earlier writes
	} else {
		b = s.db.NewBatch()
	}
	defer b.Close()
	var kb, vb []byte
	for _, r := range recs {
		var n int64
		switch {
		case r.Count != nil:
			kb = countKey(kb[:0], gen, r.Count.AdID, "", r.Count.Minute)
			n = r.Count.Count
		case r.Filtered != nil:
			kb = countKey(kb[:0], gen, r.Filtered.AdID, r.Filtered.FilterID, r.Filtered.Minute)
			n = r.Filtered.Count
		default:
			kb = topKey(kb[:0], gen, r.Top.WindowSize, r.Top.Minute)
		}
		if r.Top != nil {
			ads := r.Top.Ads
			if merge {
				old, ok, err := get(b, kb)
				if err != nil {
					return err
				}
				if ok {
					stored, err := store.DecodeTopAds(old)
					if err != nil {
						return unavailable("merge", err)
					}
					ads = store.MergeTop(stored, ads)
				}
			}
			vb = store.AppendTopAds(vb[:0], ads)
		} else {
			if merge {
				old, ok, err := get(b, kb)
				if err != nil {
					return err
				}
				if ok {
					if c, w := binary.Uvarint(old); w > 0 && int64(c) >= n {
						continue
					}
				}
			}
			vb = binary.AppendUvarint(vb[:0], uint64(n))
		}
		if err := b.Set(kb, vb, nil); err != nil {
			return unavailable("upsert", err)
		}
	}
	if err := b.Commit(s.wo); err != nil {
		return unavailable("upsert", err)
	}
	return nil
}

// get reads key from an indexed batch (and the database under it).
func get(b *pebble.Batch, key []byte) ([]byte, bool, error) {
	v, closer, err := b.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, unavailable("merge", err)
	}
	out := append([]byte(nil), v...)
	closer.Close()
	return out, true, nil
}

// Count sums the counts of adID (filtered by filterID when not "") over the
// minutes [from, to), each from its serving generation.
func (s *Store) Count(ctx context.Context, adID, filterID string, from, to int64) (int64, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	if err := store.CheckID("ad id", adID); err != nil {
		return 0, err
	}
	if len(filterID) > store.MaxIDBytes {
		return 0, fmt.Errorf("%w: filter id is %d bytes, limit %d", store.ErrInvalid, len(filterID), store.MaxIDBytes)
	}
	if err := store.CheckRange(from, to); err != nil {
		return 0, err
	}
	var total int64
	var it *pebble.Iterator
	defer func() {
		if it != nil {
			it.Close()
		}
	}()
	var lo, hi []byte
	for _, seg := range s.serving.Load().Segments(from, to) {
		for h := hourOf(seg.From); h < seg.To; h += 3600 {
			// One seek per hour: a range of centuries is millions of
			// them, so the caller's deadline must be able to stop it.
			if err := s.check(ctx); err != nil {
				return 0, err
			}
			a, b := max(seg.From, h), min(seg.To, h+3600)
			lo = countKey(lo[:0], seg.Gen, adID, filterID, a)
			hi = countKey(hi[:0], seg.Gen, adID, filterID, b-60)
			hi = append(hi, 0) // just past the last minute's key
			if it == nil {
				var err error
				if it, err = s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi}); err != nil {
					return 0, unavailable("count", err)
				}
			} else {
				it.SetBounds(lo, hi)
			}
			for it.First(); it.Valid(); it.Next() {
				v, w := binary.Uvarint(it.Value())
				if w <= 0 {
					return 0, unavailable("count", errors.New("bad count value"))
				}
				total += int64(v)
			}
			if err := it.Error(); err != nil {
				return 0, unavailable("count", err)
			}
		}
	}
	return total, nil
}

// Top returns the top list for windowSize at minute from the serving generation.
func (s *Store) Top(ctx context.Context, windowSize int, minute int64) (result.Top, error) {
	if err := s.check(ctx); err != nil {
		return result.Top{}, err
	}
	if windowSize <= 0 || minute%60 != 0 {
		return result.Top{}, fmt.Errorf("%w: top window %d, minute %d", store.ErrInvalid, windowSize, minute)
	}
	gen := s.serving.Load().Tops().GenAt(minute)
	v, closer, err := s.db.Get(topKey(nil, gen, windowSize, minute))
	if errors.Is(err, pebble.ErrNotFound) {
		return result.Top{}, fmt.Errorf("%w: no top-%d list at minute %d", store.ErrNotFound, windowSize, minute)
	}
	if err != nil {
		return result.Top{}, unavailable("top", err)
	}
	defer closer.Close()
	ads, err := store.DecodeTopAds(v)
	if err != nil {
		return result.Top{}, unavailable("top", err)
	}
	return result.Top{WindowSize: windowSize, Minute: minute, Ads: ads}, nil
}

// LatestTopMinute is the newest minute whose serving generation has a top list
// for windowSize.
func (s *Store) LatestTopMinute(ctx context.Context, windowSize int) (int64, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	if windowSize <= 0 {
		return 0, fmt.Errorf("%w: top window %d", store.ErrInvalid, windowSize)
	}
	sv := s.serving.Load().Tops()
	best, found := int64(math.MinInt64), false
	for _, gen := range sv.Generations() {
		m, ok, err := s.latestTopIn(sv, gen, windowSize)
		if err != nil {
			return 0, err
		}
		if ok && (!found || m > best) {
			best, found = m, true
		}
	}
	if !found {
		return 0, fmt.Errorf("%w: no top-%d list", store.ErrNotFound, windowSize)
	}
	return best, nil
}

// latestTopIn finds the newest minute that gen both serves and has a top list for.
func (s *Store) latestTopIn(sv *store.Serving, gen store.Generation, window int) (int64, bool, error) {
	p := topPrefix(nil, gen, window)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return 0, false, unavailable("latest top", err)
	}
	defer it.Close()
	if gen != store.LiveGeneration {
		segs := sv.Owned(gen)
		for i := len(segs) - 1; i >= 0; i-- {
			if it.SeekLT(topKey(nil, gen, window, segs[i].To)) {
				if m := getI64(it.Key()[len(p):]); m >= segs[i].From {
					return m, true, nil
				}
			}
		}
		if err := it.Error(); err != nil {
			return 0, false, unavailable("latest top", err)
		}
		return 0, false, nil
	}
	for ok := it.Last(); ok; {
		m := getI64(it.Key()[len(p):])
		seg, covered := sv.SegmentAt(m)
		if !covered {
			return m, true, nil
		}
		ok = it.SeekLT(topKey(nil, gen, window, seg.From))
	}
	if err := it.Error(); err != nil {
		return 0, false, unavailable("latest top", err)
	}
	return 0, false, nil
}

// ScanCounts calls fn for every count and filtered count whose minute is in
// [from, to), each from its serving generation.
func (s *Store) ScanCounts(ctx context.Context, from, to int64, fn func(result.Record) error) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := store.CheckRange(from, to); err != nil {
		return err
	}
	n := 0
	for _, seg := range s.serving.Load().Segments(from, to) {
		for h := hourOf(seg.From); h < seg.To; h += 3600 {
			if err := s.check(ctx); err != nil { // empty hours count too
				return err
			}
			p := countPrefix(nil, seg.Gen, h)
			it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
			if err != nil {
				return unavailable("scan counts", err)
			}
			for it.First(); it.Valid(); it.Next() {
				k := it.Key()[len(p):]
				ad, k, ok1 := getStr(k)
				filter, k, ok2 := getStr(k)
				if !ok1 || !ok2 || len(k) != 8 {
					it.Close()
					return unavailable("scan counts", errors.New("bad count key"))
				}
				m := getI64(k)
				if m < seg.From || m >= seg.To {
					continue
				}
				v, _ := binary.Uvarint(it.Value())
				var r result.Record
				if filter == "" {
					r.Count = &result.Count{AdID: ad, Minute: m, Count: int64(v)}
				} else {
					r.Filtered = &result.FilteredCount{AdID: ad, FilterID: filter, Minute: m, Count: int64(v)}
				}
				if err := fn(r); err != nil {
					it.Close()
					return err
				}
				if n++; n%4096 == 0 {
					if err := s.check(ctx); err != nil {
						it.Close()
						return err
					}
				}
			}
			err = it.Error()
			it.Close()
			if err != nil {
				return unavailable("scan counts", err)
			}
		}
	}
	return nil
}

// ---- generations ----

// encodeGen is From, To, Seq, TopTo as big-endian uint64s. TopTo comes last
// so a record written before it existed (24 bytes) still decodes: its top
// lists end at To.
func encodeGen(g store.GenRange) []byte {
	b := make([]byte, 0, 32)
	b = binary.BigEndian.AppendUint64(b, uint64(g.From))
	b = binary.BigEndian.AppendUint64(b, uint64(g.To))
	b = binary.BigEndian.AppendUint64(b, uint64(g.Seq))
	return binary.BigEndian.AppendUint64(b, uint64(g.TopTo))
}

func (s *Store) loadGenerations() error {
	p := []byte{pMeta, 'g'}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return unavailable("load generations", err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		k, v := it.Key(), it.Value()
		if len(k) != 10 || (len(v) != 24 && len(v) != 32) {
			return unavailable("load generations", errors.New("bad generation record"))
		}
		g := store.GenRange{
			Gen:  store.Generation(getI64(k[2:])),
			From: int64(binary.BigEndian.Uint64(v)),
			To:   int64(binary.BigEndian.Uint64(v[8:])),
			Seq:  int64(binary.BigEndian.Uint64(v[16:])),
		}
		if len(v) == 32 {
			g.TopTo = int64(binary.BigEndian.Uint64(v[24:]))
		}
		s.gens[g.Gen] = g
		s.maxGen = max(s.maxGen, g.Gen)
		s.maxSeq = max(s.maxSeq, g.Seq)
	}
	if err := it.Error(); err != nil {
		return unavailable("load generations", err)
	}
	s.publish()
	return nil
}

// publish swaps in the serving map and writable set built from s.gens; s.mu held.
func (s *Store) publish() {
	all := make([]store.GenRange, 0, len(s.gens))
	known := make(map[store.Generation]bool, len(s.gens))
	for g, r := range s.gens {
		all = append(all, r)
		known[g] = true
	}
	s.genKnow.Store(&known)
	s.serving.Store(store.NewServing(all))
}

// NewGeneration reserves the next generation for the counts of [from, to)
// and the top lists of the window ends [from, topTo).
func (s *Store) NewGeneration(ctx context.Context, from, to, topTo int64) (store.Generation, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	if err := store.CheckGenRange(from, to, topTo); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g := store.GenRange{Gen: s.maxGen + 1, From: from, To: to, TopTo: topTo}
	if err := s.db.Set(genKey(g.Gen), encodeGen(g), pebble.Sync); err != nil {
		return 0, unavailable("new generation", err)
	}
	s.maxGen = g.Gen
	s.gens[g.Gen] = g
	s.publish()
	return g.Gen, nil
}

// CommitGeneration makes gen serve its ranges; committing twice is a no-op.
func (s *Store) CommitGeneration(ctx context.Context, gen store.Generation) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if gen <= store.LiveGeneration {
		return fmt.Errorf("%w: generation %d cannot be committed", store.ErrInvalid, gen)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.gens[gen]
	if !ok {
		return fmt.Errorf("%w: generation %d", store.ErrNotFound, gen)
	}
	if g.Committed() {
		return nil
	}
	g.Seq = s.maxSeq + 1
	if err := s.db.Set(genKey(gen), encodeGen(g), pebble.Sync); err != nil {
		return unavailable("commit generation", err)
	}
	s.maxSeq = g.Seq
	s.gens[gen] = g
	s.publish()
	return nil
}
