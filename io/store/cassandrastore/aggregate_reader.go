package cassandrastore

import (
	"context"
	"errors"
	"fmt"

	"github.com/gocql/gocql"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
)

// Count sums adID's counts over [from, to), each minute from its serving
// generation: one partition slice per (segment, day).
func (s *Store) Count(ctx context.Context, adID, filterID string, from, to int64) (int64, error) {
	if err := store.CheckID("ad id", adID); err != nil {
		return 0, err
	}
	if len(filterID) > store.MaxIDBytes {
		return 0, fmt.Errorf("%w: filter id is %d bytes, limit %d", store.ErrInvalid, len(filterID), store.MaxIDBytes)
	}
	if err := store.CheckRange(from, to); err != nil {
		return 0, err
	}
	sv, err := s.servingNow(ctx)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.ReadTimeout)
	defer cancel()
	var total int64
	for _, seg := range sv.Segments(from, to) {
		for d := dayOf(seg.From); d < seg.To; d += day {
			if err := ctxDone(ctx); err != nil {
				return 0, err
			}
			var n int64
			err := s.s.Query("SELECT sum(count) FROM counts WHERE gen = ? AND ad_id = ? AND filter_id = ? AND day = ? AND minute >= ? AND minute < ?",
				int64(seg.Gen), adID, filterID, d, max(seg.From, d), min(seg.To, d+day)).
				WithContext(ctx).Consistency(s.rcons).Scan(&n)
			if err != nil {
				return 0, s.readErr("count", ctx, err)
			}
			total += n
		}
	}
	return total, nil
}

// Top returns the list for windowSize at minute from its serving generation.
func (s *Store) Top(ctx context.Context, windowSize int, minute int64) (result.Top, error) {
	if windowSize <= 0 || minute%60 != 0 {
		return result.Top{}, fmt.Errorf("%w: top window %d, minute %d", store.ErrInvalid, windowSize, minute)
	}
	sv, err := s.servingNow(ctx)
	if err != nil {
		return result.Top{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.ReadTimeout)
	defer cancel()
	var blob []byte
	err = s.s.Query("SELECT ads FROM tops WHERE gen = ? AND window_size = ? AND day = ? AND minute = ?",
		int64(sv.Tops().GenAt(minute)), windowSize, dayOf(minute), minute).WithContext(ctx).Consistency(s.rcons).Scan(&blob)
	if errors.Is(err, gocql.ErrNotFound) {
		return result.Top{}, fmt.Errorf("%w: no top-%d list at minute %d", store.ErrNotFound, windowSize, minute)
	}
	if err != nil {
		return result.Top{}, s.readErr("top", ctx, err)
	}
	ads, err := store.DecodeTopAds(blob)
	if err != nil {
		return result.Top{}, fmt.Errorf("%w: cassandrastore: top: %v", store.ErrUnavailable, err)
	}
	return result.Top{WindowSize: windowSize, Minute: minute, Ads: ads}, nil
}

// latestIn is the newest minute in [lo, hi) with a top list in (gen, window, day).
func (s *Store) latestIn(ctx context.Context, gen store.Generation, window int, d, lo, hi int64) (int64, bool, error) {
	var m int64
	err := s.s.Query("SELECT minute FROM tops WHERE gen = ? AND window_size = ? AND day = ? AND minute >= ? AND minute < ? LIMIT 1",
		int64(gen), window, d, lo, hi).WithContext(ctx).Consistency(s.rcons).Scan(&m)
	if errors.Is(err, gocql.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, s.readErr("latest_top_minute", ctx, err)
	}
	return m, true, nil
}

// LatestTopMinute is the newest minute whose serving generation has a top
// list for windowSize.
func (s *Store) LatestTopMinute(ctx context.Context, windowSize int) (int64, error) {
	if windowSize <= 0 {
		return 0, fmt.Errorf("%w: top window %d", store.ErrInvalid, windowSize)
	}
	sv, err := s.servingNow(ctx)
	if err != nil {
		return 0, err
	}
	sv = sv.Tops()
	ctx, cancel := context.WithTimeout(ctx, s.o.ReadTimeout)
	defer cancel()
	var best int64
	found := false
	for _, gen := range sv.Generations() {
		days, err := s.topDays(ctx, gen, windowSize)
		if err != nil {
			return 0, err
		}
		var segs []store.Segment
		if gen != store.LiveGeneration {
			segs = sv.Owned(gen)
		}
	days:
		for _, d := range days { // newest first
			if found && d+day <= best {
				break
			}
			if err := ctxDone(ctx); err != nil {
				return 0, err
			}
			if gen != store.LiveGeneration {
				for i := len(segs) - 1; i >= 0; i-- {
					lo, hi := max(segs[i].From, d), min(segs[i].To, d+day)
					if lo >= hi {
						continue
					}
					m, ok, err := s.latestIn(ctx, gen, windowSize, d, lo, hi)
					if err != nil {
						return 0, err
					}
					if ok {
						if !found || m > best {
							best, found = m, true
						}
						break days
					}
				}
				continue
			}
			hi := d + day
			for hi > d {
				m, ok, err := s.latestIn(ctx, gen, windowSize, d, d, hi)
				if err != nil {
					return 0, err
				}
				if !ok {
					break
				}
				seg, covered := sv.SegmentAt(m)
				if !covered {
					if !found || m > best {
						best, found = m, true
					}
					break days
				}
				hi = seg.From
			}
		}
	}
	if !found {
		return 0, fmt.Errorf("%w: no top-%d list", store.ErrNotFound, windowSize)
	}
	return best, nil
}

func (s *Store) topDays(ctx context.Context, gen store.Generation, window int) ([]int64, error) {
	it := s.s.Query("SELECT day FROM top_days WHERE gen = ? AND window_size = ?", int64(gen), window).
		WithContext(ctx).Consistency(s.rcons).PageSize(5000).Iter()
	var days []int64
	var d int64
	for it.Scan(&d) {
		days = append(days, d)
	}
	if err := it.Close(); err != nil {
		return nil, s.readErr("latest_top_minute", ctx, err)
	}
	return days, nil
}

// ScanCounts calls fn for every count and filtered count with a minute in
// [from, to), as served.
func (s *Store) ScanCounts(ctx context.Context, from, to int64, fn func(result.Record) error) error {
	if err := store.CheckRange(from, to); err != nil {
		return err
	}
	sv, err := s.servingNow(ctx)
	if err != nil {
		return err
	}
	withDigest, err := s.hasDigests(ctx)
	if err != nil {
		return err
	}
	type series struct{ ad, filter string }
	for _, seg := range sv.Segments(from, to) {
		for d := dayOf(seg.From); d < seg.To; d += day {
			lo, hi := max(seg.From, d), min(seg.To, d+day)
			for b := 0; b < 16; b++ {
				if err := ctxDone(ctx); err != nil {
					return err
				}
				qctx, cancel := context.WithTimeout(ctx, s.o.ReadTimeout)
				it := s.s.Query("SELECT ad_id, filter_id FROM count_series WHERE gen = ? AND day = ? AND bucket = ?", int64(seg.Gen), d, b).
					WithContext(qctx).Consistency(s.rcons).PageSize(5000).Iter()
				var list []series
				var x series
				for it.Scan(&x.ad, &x.filter) {
					list = append(list, x)
				}
				err := it.Close()
				cancel()
				if err != nil {
					return s.readErr("scan_counts", qctx, err)
				}
				for _, x := range list {
					if err := ctxDone(ctx); err != nil {
						return err
					}
					if err := s.scanSeries(ctx, seg.Gen, x.ad, x.filter, d, lo, hi, withDigest, fn); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

func (s *Store) scanSeries(ctx context.Context, gen store.Generation, ad, filter string, d, lo, hi int64, withDigest bool, fn func(result.Record) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.o.ReadTimeout)
	defer cancel()
	cols := "minute, count"
	var m, n int64
	var b []byte
	dest := []any{&m, &n}
	if withDigest {
		cols, dest = cols+", digest", append(dest, &b)
	}
	it := s.s.Query("SELECT "+cols+" FROM counts WHERE gen = ? AND ad_id = ? AND filter_id = ? AND day = ? AND minute >= ? AND minute < ?",
		int64(gen), ad, filter, d, lo, hi).WithContext(ctx).Consistency(s.rcons).PageSize(5000).Iter()
	for it.Scan(dest...) {
		dg, err := digestOf(b)
		if err != nil {
			it.Close()
			return err
		}
		var r result.Record
		if filter == "" {
			r.Count = &result.Count{AdID: ad, Minute: m, Count: n, Digest: dg}
		} else {
			r.Filtered = &result.FilteredCount{AdID: ad, FilterID: filter, Minute: m, Count: n, Digest: dg}
		}
		if err := fn(r); err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return s.readErr("scan_counts", ctx, err)
	}
	return nil
}
