// Package memstore is a TEST FAKE of store.AggregateStore for the query API's
// tests: an in-memory map of the live generation's aggregate rows. It is not a
// backend — it keeps no raw clicks, has no generations beyond the live one and
// is never used outside tests. The real stores are io/store/pebblestore and
// io/store/cassandrastore.
package memstore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
)

// Store is the fake. The zero value is not usable; call New.
type Store struct {
	mu     sync.RWMutex
	counts map[string]map[int64]int64 // ad "\x00" filter → minute → count
	tops   map[int]map[int64]result.Top
	down   bool
}

// New returns an empty fake store.
func New() *Store {
	return &Store{counts: map[string]map[int64]int64{}, tops: map[int]map[int64]result.Top{}}
}

var _ store.Store = (*Store)(nil)

// SetDown makes every read fail with store.ErrUnavailable (and Ping fail), to
// test how the API answers an unreachable backend.
func (s *Store) SetDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

func (s *Store) check() error {
	if s.down {
		return fmt.Errorf("memstore: connection refused to 10.0.0.7:9042: %w", store.ErrUnavailable)
	}
	return nil
}

func key(ad, filter string) string { return ad + "\x00" + filter }

// Upsert implements store.AggregateStore (live generation only).
func (s *Store) Upsert(ctx context.Context, gen store.Generation, recs []result.Record) error {
	return s.write(gen, recs, false)
}

// Merge is Upsert keeping the larger count and merging top lists
// (store.AggregateStore.Merge).
func (s *Store) Merge(ctx context.Context, gen store.Generation, recs []result.Record) error {
	return s.write(gen, recs, true)
}

func (s *Store) write(gen store.Generation, recs []result.Record, merge bool) error {
	if gen != store.LiveGeneration {
		return fmt.Errorf("memstore: only the live generation: %w", store.ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	put := func(k string, m, c int64) {
		mm := s.counts[k]
		if mm == nil {
			mm = map[int64]int64{}
			s.counts[k] = mm
		}
		if old, ok := mm[m]; merge && ok && old >= c {
			return
		}
		mm[m] = c
	}
	for _, r := range recs {
		switch {
		case r.Count != nil:
			put(key(r.Count.AdID, ""), r.Count.Minute, r.Count.Count)
		case r.Filtered != nil:
			put(key(r.Filtered.AdID, r.Filtered.FilterID), r.Filtered.Minute, r.Filtered.Count)
		case r.Top != nil:
			tm := s.tops[r.Top.WindowSize]
			if tm == nil {
				tm = map[int64]result.Top{}
				s.tops[r.Top.WindowSize] = tm
			}
			t := *r.Top
			t.Ads = append([]result.AdCount(nil), t.Ads...)
			if old, ok := tm[t.Minute]; merge && ok {
				t.Ads = store.MergeTop(old.Ads, t.Ads)
			}
			tm[t.Minute] = t
		default:
			return fmt.Errorf("memstore: empty record: %w", store.ErrInvalid)
		}
	}
	return nil
}

// Count implements store.AggregateStore.
func (s *Store) Count(ctx context.Context, adID, filterID string, from, to int64) (int64, error) {
	if from%60 != 0 || to%60 != 0 || from > to {
		return 0, fmt.Errorf("memstore: range [%d, %d): %w", from, to, store.ErrInvalid)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(); err != nil {
		return 0, err
	}
	var n int64
	mm := s.counts[key(adID, filterID)]
	if int64(len(mm)) < (to-from)/60 {
		for m, c := range mm {
			if m >= from && m < to {
				n += c
			}
		}
		return n, nil
	}
	for m := from; m < to; m += 60 {
		n += mm[m]
	}
	return n, nil
}

// Top implements store.AggregateStore.
func (s *Store) Top(ctx context.Context, windowSize int, minute int64) (result.Top, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(); err != nil {
		return result.Top{}, err
	}
	t, ok := s.tops[windowSize][minute]
	if !ok {
		return result.Top{}, store.ErrNotFound
	}
	t.Ads = append([]result.AdCount(nil), t.Ads...)
	return t, nil
}

// LatestTopMinute implements store.AggregateStore.
func (s *Store) LatestTopMinute(ctx context.Context, windowSize int) (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.check(); err != nil {
		return 0, err
	}
	var best int64
	found := false
	for m := range s.tops[windowSize] {
		if !found || m > best {
			best, found = m, true
		}
	}
	if !found {
		return 0, store.ErrNotFound
	}
	return best, nil
}

// ScanCounts implements store.AggregateStore.
func (s *Store) ScanCounts(ctx context.Context, from, to int64, fn func(result.Record) error) error {
	s.mu.RLock()
	var recs []result.Record
	for k, mm := range s.counts {
		i := 0
		for i < len(k) && k[i] != 0 {
			i++
		}
		ad, filter := k[:i], k[i+1:]
		for m, c := range mm {
			if m < from || m >= to {
				continue
			}
			if filter == "" {
				recs = append(recs, result.Record{Count: &result.Count{AdID: ad, Minute: m, Count: c}})
			} else {
				recs = append(recs, result.Record{Filtered: &result.FilteredCount{AdID: ad, FilterID: filter, Minute: m, Count: c}})
			}
		}
	}
	s.mu.RUnlock()
	sort.Slice(recs, func(i, j int) bool { return recs[i].Key() < recs[j].Key() })
	for _, r := range recs {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

var errNoGenerations = errors.New("memstore: generations are not part of the fake")

// NewGeneration is not supported by the fake.
func (s *Store) NewGeneration(ctx context.Context, from, to, topTo int64) (store.Generation, error) {
	return 0, errNoGenerations
}

// CommitGeneration is not supported by the fake.
func (s *Store) CommitGeneration(ctx context.Context, gen store.Generation) error {
	return errNoGenerations
}

// WriteRaw is not supported by the fake.
func (s *Store) WriteRaw(ctx context.Context, clicks []click.Click) error {
	return errors.New("memstore: raw clicks are not part of the fake")
}

// RawShards is not supported by the fake.
func (s *Store) RawShards(ctx context.Context, from, to time.Time, n int) ([]store.Shard, error) {
	return nil, errors.New("memstore: raw clicks are not part of the fake")
}

// ReadRaw is not supported by the fake.
func (s *Store) ReadRaw(ctx context.Context, shard store.Shard, fn func(click.Click) error) error {
	return errors.New("memstore: raw clicks are not part of the fake")
}

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.check()
}

// Sync implements store.Store: memory has nothing to flush.
func (s *Store) Sync(ctx context.Context) error { return nil }

// Close implements store.Store.
func (s *Store) Close() error { return nil }
