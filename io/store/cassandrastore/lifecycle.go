package cassandrastore

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/gocql/gocql"

	"github.com/adclick/adclick/io/store"
)

var _ store.Lifecycle = (*Store)(nil)

// Collect runs one collection: raw retention, aggregate retention, then the
// generations. It finds what exists from the index tables (their partition
// keys, SELECT DISTINCT: small scans) and deletes whole partitions where it
// can, clustering ranges otherwise; data before the index rows naming it,
// so a collection cut short leaves every remaining row findable.
func (s *Store) Collect(ctx context.Context, c store.Collection) (store.CollectStats, error) {
	var st store.CollectStats
	if err := ctxDone(ctx); err != nil {
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
	gc := !c.SupersededBefore.IsZero() || !c.AbandonedBefore.IsZero()
	if c.AggregatesBefore.IsZero() && !gc {
		return st, nil
	}
	idx, err := s.aggIndex(ctx)
	if err != nil {
		return st, err
	}
	if !c.AggregatesBefore.IsZero() {
		for _, d := range store.ExpiryDeletions(idx.generations(), c.AggregatesBefore) {
			if err := s.deleteRows(ctx, idx, d, step); err != nil {
				return st, err
			}
		}
	}
	if gc {
		err = s.collectGenerations(ctx, idx, c, &st, step)
	}
	return st, err
}

// expireRaw records the horizon first (so no process writes older clicks
// while the deletion runs), then deletes the raw partitions of every hour
// before it, and last the hour's index partition.
func (s *Store) expireRaw(ctx context.Context, before time.Time, step func()) error {
	ms := before.UnixMilli()
	// The value as the write timestamp: the largest horizon wins whatever
	// the order of writes from several processes.
	err := s.retry(ctx, "raw_horizon", func(ctx context.Context) error {
		return s.s.Query("INSERT INTO lifecycle (name, value) VALUES ('raw_horizon', ?) USING TIMESTAMP ?", ms, ms*1000).
			WithContext(ctx).Consistency(s.wcons).Exec()
	})
	if err != nil {
		return err
	}
	s.raiseHorizon(ms)
	var hours []int64
	var h int64
	if err := s.scan(ctx, "collect_raw", "SELECT DISTINCT hour FROM raw_partitions", nil, []any{&h}, func() { hours = append(hours, h) }); err != nil {
		return err
	}
	slices.Sort(hours)
	cut := store.FloorHour(before.Unix())
	for _, h := range hours {
		if h >= cut {
			break
		}
		var dels []stmt
		var ad string
		if err := s.scan(ctx, "collect_raw", "SELECT ad_id FROM raw_partitions WHERE hour = ?", []any{h}, []any{&ad}, func() {
			dels = append(dels, stmt{"DELETE FROM raw_clicks WHERE ad_id = ? AND hour = ?", []any{ad, h}})
		}); err != nil {
			return err
		}
		if err := s.writeEach(ctx, dels); err != nil {
			return err
		}
		if err := s.writeEach(ctx, []stmt{{"DELETE FROM raw_partitions WHERE hour = ?", []any{h}}}); err != nil {
			return err
		}
		step()
	}
	return s.expireTooLate(ctx, before)
}

func (s *Store) raiseHorizon(ms int64) {
	for {
		old := s.rawHorizon.Load()
		if ms <= old || s.rawHorizon.CompareAndSwap(old, ms) {
			return
		}
	}
}

// RawHorizon is the horizon the last raw expiry recorded, zero where none
// did. (TTLs count from the write, so they say nothing about event times.)
func (s *Store) RawHorizon(ctx context.Context) (time.Time, error) {
	qctx, cancel := context.WithTimeout(ctx, s.o.ReadTimeout)
	defer cancel()
	var ms int64
	err := s.s.Query("SELECT value FROM lifecycle WHERE name = 'raw_horizon'").WithContext(qctx).Consistency(s.rcons).Scan(&ms)
	switch {
	case err == nil:
		s.raiseHorizon(ms)
		return time.UnixMilli(ms).UTC(), nil
	case errors.Is(err, gocql.ErrNotFound), missingLifecycleTable(err):
		return time.Time{}, nil
	default:
		return time.Time{}, s.readErr("raw_horizon", qctx, err)
	}
}

// missingLifecycleTable: a keyspace migrated before the lifecycle table
// existed (adclick migrate adds it).
func missingLifecycleTable(err error) bool { return missingColumn(err, "lifecycle") }

// missingColumn: a query named a table or column (name) the keyspace does
// not have yet.
func missingColumn(err error, name string) bool {
	var re gocql.RequestError
	return errors.As(err, &re) && re.Code() == gocql.ErrCodeInvalid && strings.Contains(re.Message(), name)
}

// scan runs a paged read and calls fn after each row is scanned into dest.
// A scan of a whole index table may take several pages: it gets a few read
// timeouts.
func (s *Store) scan(ctx context.Context, op, cql string, args, dest []any, fn func()) error {
	qctx, cancel := context.WithTimeout(ctx, 6*s.o.ReadTimeout)
	defer cancel()
	it := s.s.Query(cql, args...).WithContext(qctx).Consistency(s.rcons).PageSize(5000).Iter()
	for it.Scan(dest...) {
		fn()
	}
	if err := it.Close(); err != nil {
		return s.readErr(op, qctx, err)
	}
	return nil
}

// writeEach runs statements of different partitions, each on its own.
func (s *Store) writeEach(ctx context.Context, sts []stmt) error {
	if len(sts) == 0 {
		return nil
	}
	groups := make([][]stmt, len(sts))
	for i := range sts {
		groups[i] = sts[i : i+1]
	}
	return s.writeGroups(ctx, "collect", groups)
}

// aggIndex is what the aggregate index tables name at the start of a
// collection: the count_series partitions (generation, day, bucket) and the
// top_days partitions (generation, window).
type aggIndex struct {
	counts map[store.Generation]map[int64][]int
	tops   map[store.Generation][]int
}

func (s *Store) aggIndex(ctx context.Context) (*aggIndex, error) {
	idx := &aggIndex{counts: map[store.Generation]map[int64][]int{}, tops: map[store.Generation][]int{}}
	var gen, d int64
	var b int
	err := s.scan(ctx, "collect_index", "SELECT DISTINCT gen, day, bucket FROM count_series", nil, []any{&gen, &d, &b}, func() {
		g := store.Generation(gen)
		if idx.counts[g] == nil {
			idx.counts[g] = map[int64][]int{}
		}
		idx.counts[g][d] = append(idx.counts[g][d], b)
	})
	if err != nil {
		return nil, err
	}
	err = s.scan(ctx, "collect_index", "SELECT DISTINCT gen, window_size FROM top_days", nil, []any{&gen, &b}, func() {
		idx.tops[store.Generation(gen)] = append(idx.tops[store.Generation(gen)], b)
	})
	return idx, err
}

// generations lists every generation the index names, live always.
func (x *aggIndex) generations() []store.Generation {
	seen := map[store.Generation]bool{store.LiveGeneration: true}
	for g := range x.counts {
		seen[g] = true
	}
	for g := range x.tops {
		seen[g] = true
	}
	out := make([]store.Generation, 0, len(seen))
	for g := range seen {
		out = append(out, g)
	}
	slices.Sort(out)
	return out
}

func (s *Store) deleteRows(ctx context.Context, idx *aggIndex, d store.Deletion, step func()) error {
	for _, sp := range d.Counts {
		if err := s.deleteCounts(ctx, idx, d.Gen, sp, step); err != nil {
			return err
		}
	}
	for _, sp := range d.Tops {
		if err := s.deleteTops(ctx, idx, d.Gen, sp, step); err != nil {
			return err
		}
	}
	return nil
}

// overlap is sp ∩ [d, d + 1 day), and whether that is the whole day.
func overlap(sp store.Span, d int64) (lo, hi int64, whole, ok bool) {
	if d >= sp.To || d+day <= sp.From {
		return 0, 0, false, false
	}
	lo, hi = max(sp.From, d), min(sp.To, d+day)
	return lo, hi, lo == d && hi == d+day, true
}

// deleteCounts deletes gen's counts of the minutes in sp: a whole day's
// partitions and then their index partition, or the day's part of each
// series. One step per day.
func (s *Store) deleteCounts(ctx context.Context, idx *aggIndex, gen store.Generation, sp store.Span, step func()) error {
	days := idx.counts[gen]
	for _, d := range slices.Sorted(maps.Keys(days)) {
		lo, hi, whole, ok := overlap(sp, d)
		if !ok {
			continue
		}
		for _, b := range days[d] {
			var dels []stmt
			var ad, filter string
			err := s.scan(ctx, "collect_counts", "SELECT ad_id, filter_id FROM count_series WHERE gen = ? AND day = ? AND bucket = ?",
				[]any{int64(gen), d, b}, []any{&ad, &filter}, func() {
					if whole {
						dels = append(dels, stmt{"DELETE FROM counts WHERE gen = ? AND ad_id = ? AND filter_id = ? AND day = ?", []any{int64(gen), ad, filter, d}})
					} else {
						dels = append(dels, stmt{"DELETE FROM counts WHERE gen = ? AND ad_id = ? AND filter_id = ? AND day = ? AND minute >= ? AND minute < ?",
							[]any{int64(gen), ad, filter, d, lo, hi}})
					}
				})
			if err != nil {
				return err
			}
			if err := s.writeEach(ctx, dels); err != nil {
				return err
			}
			if whole {
				if err := s.writeEach(ctx, []stmt{{"DELETE FROM count_series WHERE gen = ? AND day = ? AND bucket = ?", []any{int64(gen), d, b}}}); err != nil {
					return err
				}
			}
		}
		if whole {
			delete(days, d)
		}
		step()
	}
	return nil
}

// deleteTops deletes gen's top lists of the window ends in sp, every
// window: whole days' partitions and then their index rows, or the day's
// part. One step per window.
func (s *Store) deleteTops(ctx context.Context, idx *aggIndex, gen store.Generation, sp store.Span, step func()) error {
	for _, w := range idx.tops[gen] {
		var days []int64
		var d int64
		if err := s.scan(ctx, "collect_tops", "SELECT day FROM top_days WHERE gen = ? AND window_size = ?", []any{int64(gen), w}, []any{&d}, func() {
			days = append(days, d)
		}); err != nil {
			return err
		}
		var dels, index []stmt
		for _, d := range days {
			lo, hi, whole, ok := overlap(sp, d)
			switch {
			case !ok:
			case whole:
				dels = append(dels, stmt{"DELETE FROM tops WHERE gen = ? AND window_size = ? AND day = ?", []any{int64(gen), w, d}})
				index = append(index, stmt{"DELETE FROM top_days WHERE gen = ? AND window_size = ? AND day = ?", []any{int64(gen), w, d}})
			default:
				dels = append(dels, stmt{"DELETE FROM tops WHERE gen = ? AND window_size = ? AND day = ? AND minute >= ? AND minute < ?", []any{int64(gen), w, d, lo, hi}})
			}
		}
		if err := s.writeEach(ctx, dels); err != nil {
			return err
		}
		if len(index) > 0 { // one partition: one batch
			if err := s.writeGroups(ctx, "collect", [][]stmt{index}); err != nil {
				return err
			}
		}
		step()
	}
	return nil
}
