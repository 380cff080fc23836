package pebblestore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/adclick/adclick/io/store"
)

var _ store.Lifecycle = (*Store)(nil)

// rawHorizonKey holds the raw horizon (Unix ms, big-endian).
var rawHorizonKey = []byte{pMeta, 'r'}

// loadRawHorizon reads the persisted raw horizon at Open.
func (s *Store) loadRawHorizon() error {
	s.rawHorizon.Store(math.MinInt64)
	v, closer, err := s.db.Get(rawHorizonKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	if err != nil {
		return unavailable("load raw horizon", err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return unavailable("load raw horizon", errors.New("bad raw horizon record"))
	}
	s.rawHorizon.Store(int64(binary.BigEndian.Uint64(v)))
	return nil
}

// RawHorizon is the time before which raw clicks may have been deleted.
func (s *Store) RawHorizon(ctx context.Context) (time.Time, error) {
	if err := s.check(ctx); err != nil {
		return time.Time{}, err
	}
	h := s.rawHorizon.Load()
	if h == math.MinInt64 {
		return time.Time{}, nil
	}
	return time.UnixMilli(h).UTC(), nil
}

// Collect runs one collection: raw retention, aggregate retention, then the
// generations. Ranges are deleted with range tombstones; the spans raw and
// aggregate retention emptied are then compacted, so their disk space is
// freed now rather than whenever Pebble would have compacted them.
func (s *Store) Collect(ctx context.Context, c store.Collection) (store.CollectStats, error) {
	var st store.CollectStats
	if err := s.check(ctx); err != nil {
		return st, err
	}
	s.collectMu.Lock()
	defer s.collectMu.Unlock()
	step := func() {
		st.Steps++
		if c.Step != nil {
			c.Step()
		}
	}
	if !c.RawBefore.IsZero() {
		if err := s.expireRaw(ctx, c.RawBefore, step); err != nil {
			return st, err
		}
	}
	if !c.AggregatesBefore.IsZero() {
		if err := s.expireAggregates(ctx, c.AggregatesBefore, step); err != nil {
			return st, err
		}
	}
	if c.SupersededBefore.IsZero() && c.AbandonedBefore.IsZero() {
		return st, nil
	}
	return st, s.collectGenerations(ctx, c, &st, step)
}

// expireRaw persists the horizon first (so nothing older is stored again
// while the deletion runs), then deletes the whole hours before it.
func (s *Store) expireRaw(ctx context.Context, before time.Time, step func()) error {
	ms := before.UnixMilli()
	if ms > s.rawHorizon.Load() {
		err := s.apply(func() error {
			return s.db.Set(rawHorizonKey, binary.BigEndian.AppendUint64(nil, uint64(ms)), pebble.Sync)
		})
		if err != nil {
			return unavailable("raw horizon", err)
		}
		s.rawHorizon.Store(ms)
	}
	end := rawTimeKey(store.FloorHour(before.Unix()) * 1000)
	if err := s.deleteRange(ctx, []byte{pRaw}, end, true); err != nil {
		return err
	}
	if err := s.expireTooLate(ctx, before); err != nil {
		return err
	}
	step()
	return nil
}

func (s *Store) expireAggregates(ctx context.Context, before time.Time, step func()) error {
	for _, d := range store.ExpiryDeletions(s.generations(), before) {
		if err := s.deleteRows(ctx, d, true, step); err != nil {
			return err
		}
	}
	return nil
}

// generations lists the live generation and every reserved one.
func (s *Store) generations() []store.Generation {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []store.Generation{store.LiveGeneration}
	for g := range s.gens {
		out = append(out, g)
	}
	return out
}

func (s *Store) collectGenerations(ctx context.Context, c store.Collection, st *store.CollectStats, step func()) error {
	s.mu.Lock()
	recs := make([]store.GenRange, 0, len(s.gens))
	for _, g := range s.gens {
		recs = append(recs, g)
	}
	s.mu.Unlock()
	plan := store.PlanGC(recs, c)
	for _, g := range plan.Abandon {
		if err := s.updateGen(ctx, g, func(r *store.GenRange) bool {
			if r.Seq != 0 { // committed meanwhile: keep it
				return false
			}
			r.Seq = store.Abandoned
			return true
		}); err != nil {
			return err
		}
	}
	for _, gs := range plan.Steps {
		if gs.Abandoned && s.gen(gs.Mark).Seq != store.Abandoned { // the abandonment lost to a commit
			continue
		}
		for _, d := range gs.Deletions {
			if err := s.deleteRows(ctx, d, false, step); err != nil {
				return err
			}
		}
		// The mark is a synced write: it makes the deletions before it in
		// the WAL durable too.
		if err := s.updateGen(ctx, gs.Mark, func(r *store.GenRange) bool { r.Collected = true; return true }); err != nil {
			return err
		}
		st.Generations++
	}
	return nil
}

func (s *Store) gen(g store.Generation) store.GenRange {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gens[g]
}

// updateGen changes gen's record with fn (which reports whether it changed
// anything) and persists it, synced.
func (s *Store) updateGen(ctx context.Context, gen store.Generation, fn func(*store.GenRange) bool) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.gens[gen]
	if !ok || !fn(&g) {
		return nil
	}
	return s.putGen("collect generation", g)
}

// deleteRows deletes d: whole hours of counts and window-end ranges of top
// lists with range tombstones, the minutes of a partly covered hour of
// counts one key at a time. compact frees the space at once.
func (s *Store) deleteRows(ctx context.Context, d store.Deletion, compact bool, step func()) error {
	for _, sp := range d.Counts {
		if err := s.deleteCounts(ctx, d.Gen, sp, compact); err != nil {
			return err
		}
		step()
	}
	for _, sp := range d.Tops {
		if err := s.deleteTops(ctx, d.Gen, sp, compact); err != nil {
			return err
		}
		step()
	}
	return nil
}

// deleteCounts deletes gen's counts of the minutes in sp.
func (s *Store) deleteCounts(ctx context.Context, gen store.Generation, sp store.Span, compact bool) error {
	if sp.From >= sp.To {
		return nil
	}
	genP := putI64([]byte{pCount}, int64(gen))
	lo, hi := genP, prefixEnd(genP)
	var partial []int64 // hours only partly in sp
	if sp.From != store.MinMinute {
		h := store.FloorHour(sp.From)
		if h != sp.From {
			partial = append(partial, h)
			h += 3600
		}
		lo = countPrefix(nil, gen, h)
	}
	if sp.To != store.MaxMinute {
		h := store.FloorHour(sp.To)
		if h != sp.To && (len(partial) == 0 || partial[0] != h) {
			partial = append(partial, h)
		}
		hi = countPrefix(nil, gen, h)
	}
	if string(lo) < string(hi) {
		if err := s.deleteRange(ctx, lo, hi, compact); err != nil {
			return err
		}
	}
	for _, h := range partial {
		if err := s.deleteMinutes(ctx, gen, h, sp); err != nil {
			return err
		}
	}
	return nil
}

// deleteMinutes deletes the counts of hour h whose minute is in sp, in
// batches of at most deleteBatch keys (an hour of live counts can be
// millions).
func (s *Store) deleteMinutes(ctx context.Context, gen store.Generation, h int64, sp store.Span) error {
	p := countPrefix(nil, gen, h)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return unavailable("collect", err)
	}
	defer it.Close()
	b := s.db.NewBatch()
	defer func() { b.Close() }()
	commit := func() error {
		if err := s.check(ctx); err != nil {
			return err
		}
		if b.Empty() {
			return nil
		}
		if err := s.apply(func() error { return b.Commit(s.wo) }); err != nil {
			return unavailable("collect", err)
		}
		b.Close()
		b = s.db.NewBatch()
		return nil
	}
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if m := getI64(k[len(k)-8:]); m < sp.From || m >= sp.To {
			continue
		}
		if err := b.Delete(k, nil); err != nil {
			return unavailable("collect", err)
		}
		if b.Count() >= deleteBatch {
			if err := commit(); err != nil {
				return err
			}
		}
	}
	if err := it.Error(); err != nil {
		return unavailable("collect", err)
	}
	return commit()
}

const deleteBatch = 10_000

// deleteTops deletes gen's top lists of the window ends in sp, every window.
func (s *Store) deleteTops(ctx context.Context, gen store.Generation, sp store.Span, compact bool) error {
	if sp.From >= sp.To {
		return nil
	}
	genP := putI64([]byte{pTop}, int64(gen))
	var windows []int
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: genP, UpperBound: prefixEnd(genP)})
	if err != nil {
		return unavailable("collect", err)
	}
	for ok := it.First(); ok; {
		w := int(binary.BigEndian.Uint32(it.Key()[len(genP):]))
		windows = append(windows, w)
		ok = it.SeekGE(prefixEnd(topPrefix(nil, gen, w)))
	}
	err = it.Error()
	it.Close()
	if err != nil {
		return unavailable("collect", err)
	}
	for _, w := range windows {
		p := topPrefix(nil, gen, w)
		lo, hi := p, prefixEnd(p)
		if sp.From != store.MinMinute {
			lo = topKey(nil, gen, w, sp.From)
		}
		if sp.To != store.MaxMinute {
			hi = topKey(nil, gen, w, sp.To)
		}
		if err := s.deleteRange(ctx, lo, hi, compact); err != nil {
			return err
		}
	}
	return nil
}

// deleteRange deletes [lo, hi) if it holds a key (a tombstone over nothing
// would only cost compaction work), then compacts it when asked.
func (s *Store) deleteRange(ctx context.Context, lo, hi []byte, compact bool) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return unavailable("collect", err)
	}
	found := it.First()
	err = it.Error()
	it.Close()
	if err != nil {
		return unavailable("collect", err)
	}
	if !found {
		return nil
	}
	if err := s.apply(func() error { return s.db.DeleteRange(lo, hi, s.wo) }); err != nil {
		return unavailable("collect", err)
	}
	if compact {
		if err := s.apply(func() error { return s.db.Compact(lo, hi, false) }); err != nil {
			return unavailable("collect: compact", err)
		}
	}
	return nil
}

// Rows counts gen's aggregate rows of the minutes [from, to).
func (s *Store) Rows(ctx context.Context, gen store.Generation, from, to int64) (int64, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	if err := store.CheckRange(from, to); err != nil {
		return 0, err
	}
	var n int64
	count := func(k []byte) {
		if m := getI64(k[len(k)-8:]); m >= from && m < to {
			n++
		}
	}
	lo, hi := countPrefix(nil, gen, store.FloorHour(from)), countPrefix(nil, gen, store.FloorHour(to)+3600)
	if err := s.scanKeys(lo, hi, count); err != nil {
		return 0, err
	}
	tops := putI64([]byte{pTop}, int64(gen))
	err := s.scanKeys(tops, prefixEnd(tops), count)
	return n, err
}

func (s *Store) scanKeys(lo, hi []byte, fn func([]byte)) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return unavailable("rows", err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		fn(it.Key())
	}
	if err := it.Error(); err != nil {
		return unavailable("rows", fmt.Errorf("scan: %w", err))
	}
	return nil
}
