package pebblestore

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/cockroachdb/pebble"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
)

// Count sums the counts of adID (filtered by filterID when not "") over the
// minutes [from, to), each from its serving generation.
func (s *Store) Count(ctx context.Context, adID, filterID string, from, to int64) (int64, error) {
	n, _, err := s.CountDigest(ctx, adID, filterID, from, to)
	return n, err
}

// CountDigest is Count with the digest of the counted ids: the sum of the
// minutes' digests (their sets are disjoint), unknown if any minute's is.
func (s *Store) CountDigest(ctx context.Context, adID, filterID string, from, to int64) (int64, result.Digest, error) {
	if err := s.check(ctx); err != nil {
		return 0, result.Digest{}, err
	}
	if err := store.CheckID("ad id", adID); err != nil {
		return 0, result.Digest{}, err
	}
	if len(filterID) > store.MaxIDBytes {
		return 0, result.Digest{}, fmt.Errorf("%w: filter id is %d bytes, limit %d", store.ErrInvalid, len(filterID), store.MaxIDBytes)
	}
	if err := store.CheckRange(from, to); err != nil {
		return 0, result.Digest{}, err
	}
	return s.sumCounts(ctx, adID, filterID, from, to)
}

// sumCounts sums the stored counts and digests of checked arguments.
func (s *Store) sumCounts(ctx context.Context, adID, filterID string, from, to int64) (int64, result.Digest, error) {
	var total int64
	digest := result.Digest{Known: true}
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
				return 0, result.Digest{}, err
			}
			a, b := max(seg.From, h), min(seg.To, h+3600)
			lo = countKey(lo[:0], seg.Gen, adID, filterID, a)
			hi = countKey(hi[:0], seg.Gen, adID, filterID, b-60)
			hi = append(hi, 0) // just past the last minute's key
			if it == nil {
				var err error
				if it, err = s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi}); err != nil {
					return 0, result.Digest{}, unavailable("count", err)
				}
			} else {
				it.SetBounds(lo, hi)
			}
			for it.First(); it.Valid(); it.Next() {
				v, d, ok := decodeCountValue(it.Value())
				if !ok {
					return 0, result.Digest{}, unavailable("count", errors.New("bad count value"))
				}
				total += v
				digest = digest.Add(d)
			}
			if err := it.Error(); err != nil {
				return 0, result.Digest{}, unavailable("count", err)
			}
		}
	}
	return total, digest, nil
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
				v, d, ok := decodeCountValue(it.Value())
				if !ok {
					it.Close()
					return unavailable("scan counts", errors.New("bad count value"))
				}
				var r result.Record
				if filter == "" {
					r.Count = &result.Count{AdID: ad, Minute: m, Count: v, Digest: d}
				} else {
					r.Filtered = &result.FilteredCount{AdID: ad, FilterID: filter, Minute: m, Count: v, Digest: d}
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
