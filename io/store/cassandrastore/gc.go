package cassandrastore

import (
	"context"
	"fmt"
	"time"

	"github.com/adclick/adclick/io/store"
)

// collectGenerations runs store.PlanGC: abandonments first (a lightweight
// transaction each, which a concurrent commit wins or loses as a whole),
// then each step's deletions and, last, its mark.
func (s *Store) collectGenerations(ctx context.Context, idx *aggIndex, c store.Collection, st *store.CollectStats, step func()) error {
	s.genMu.Lock()
	gs, err := s.loadGenerations(ctx)
	s.genMu.Unlock()
	if err != nil {
		return err
	}
	recs := make([]store.GenRange, 0, len(gs.gens))
	for _, g := range gs.gens {
		recs = append(recs, g)
	}
	plan := store.PlanGC(recs, c)
	seq := map[store.Generation]int64{}
	for _, g := range recs {
		seq[g.Gen] = g.Seq
	}
	for _, g := range plan.Abandon {
		applied, err := s.s.Query("UPDATE generations SET seq = ? WHERE p = 0 AND gen = ? IF seq = 0", store.Abandoned, int64(g)).
			WithContext(ctx).Consistency(s.wcons).MapScanCAS(map[string]any{})
		if err != nil {
			s.m.failures.WithLabelValues("abandon_generation").Inc()
			return fmt.Errorf("%w: cassandrastore: abandon generation %d: %v", store.ErrUnavailable, g, err)
		}
		if applied {
			seq[g] = store.Abandoned
		}
	}
	defer s.refreshGenerations(ctx)
	for _, gst := range plan.Steps {
		if gst.Abandoned && seq[gst.Mark] != store.Abandoned { // a commit came first
			continue
		}
		for _, d := range gst.Deletions {
			if err := s.deleteRows(ctx, idx, d, step); err != nil {
				return err
			}
		}
		if err := s.markCollected(ctx, gst.Mark, seq[gst.Mark]); err != nil {
			return err
		}
		st.Generations++
	}
	return nil
}

func (s *Store) markCollected(ctx context.Context, gen store.Generation, seq int64) error {
	if err := ctxDone(ctx); err != nil {
		return err
	}
	if s.noCollectedAt.Load() {
		return fmt.Errorf("%w: cassandrastore: the generations table has no collected_at column: run adclick migrate", store.ErrUnavailable)
	}
	_, err := s.s.Query("UPDATE generations SET collected_at = ? WHERE p = 0 AND gen = ? IF seq = ?", time.Now().UnixMicro(), int64(gen), seq).
		WithContext(ctx).Consistency(s.wcons).MapScanCAS(map[string]any{})
	if err != nil {
		s.m.failures.WithLabelValues("collect_generation").Inc()
		return fmt.Errorf("%w: cassandrastore: mark generation %d collected: %v", store.ErrUnavailable, gen, err)
	}
	return nil
}

// refreshGenerations makes this process's reads and writes see the
// abandonments at once; other processes see them within the cache TTL.
func (s *Store) refreshGenerations(ctx context.Context) {
	s.genMu.Lock()
	defer s.genMu.Unlock()
	s.loadGenerations(context.WithoutCancel(ctx)) //nolint:errcheck // the next read retries
}

// Rows counts gen's rows of the minutes [from, to): one count query per
// series and day, one per top-list partition.
func (s *Store) Rows(ctx context.Context, gen store.Generation, from, to int64) (int64, error) {
	if err := store.CheckRange(from, to); err != nil {
		return 0, err
	}
	var n int64
	countIn := func(cql string, args ...any) error {
		var c int64
		qctx, cancel := context.WithTimeout(ctx, s.o.ReadTimeout)
		defer cancel()
		if err := s.s.Query(cql, args...).WithContext(qctx).Consistency(s.rcons).Scan(&c); err != nil {
			return s.readErr("rows", qctx, err)
		}
		n += c
		return nil
	}
	for d := dayOf(from); d < to; d += day {
		lo, hi := max(from, d), min(to, d+day)
		for b := 0; b < 16; b++ {
			var list []countSeries
			var x countSeries
			if err := s.scan(ctx, "rows", "SELECT ad_id, filter_id FROM count_series WHERE gen = ? AND day = ? AND bucket = ?",
				[]any{int64(gen), d, b}, []any{&x.ad, &x.filter}, func() { list = append(list, x) }); err != nil {
				return 0, err
			}
			for _, x := range list {
				if err := countIn("SELECT COUNT(*) FROM counts WHERE gen = ? AND ad_id = ? AND filter_id = ? AND day = ? AND minute >= ? AND minute < ?",
					int64(gen), x.ad, x.filter, d, lo, hi); err != nil {
					return 0, err
				}
			}
		}
	}
	idx, err := s.aggIndex(ctx)
	if err != nil {
		return 0, err
	}
	for _, w := range idx.tops[gen] {
		for d := dayOf(from); d < to; d += day {
			if err := countIn("SELECT COUNT(*) FROM tops WHERE gen = ? AND window_size = ? AND day = ? AND minute >= ? AND minute < ?",
				int64(gen), w, d, max(from, d), min(to, d+day)); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

type countSeries struct{ ad, filter string }

// Usage reports the bytes of the raw clicks, counts and top lists, all
// generations together, as the node this client asks estimates them for its
// own token ranges (system.size_estimates: partitions × mean partition
// size, refreshed by Cassandra every few minutes); multiply by the number of
// nodes over the replication factor for the cluster. Rows are not counted
// (that would read them). OldestRaw is the start of the oldest hour that
// has raw partitions.
func (s *Store) Usage(ctx context.Context) (store.Usage, error) {
	var u store.Usage
	bytes := map[string]int64{}
	var table string
	var parts, mean int64
	if err := s.scan(ctx, "usage", "SELECT table_name, partitions_count, mean_partition_size FROM system.size_estimates WHERE keyspace_name = ?",
		[]any{s.o.Keyspace}, []any{&table, &parts, &mean}, func() { bytes[table] += parts * mean }); err != nil {
		return u, err
	}
	for _, k := range []struct{ table, kind string }{{"raw_clicks", store.KindRaw}, {"counts", store.KindCounts}, {"tops", store.KindTops}} {
		u.Kinds = append(u.Kinds, store.KindUsage{Kind: k.kind, Gen: -1, Rows: -1, Bytes: bytes[k.table], Estimated: true})
	}
	oldest, found := int64(0), false
	var h int64
	if err := s.scan(ctx, "usage", "SELECT DISTINCT hour FROM raw_partitions", nil, []any{&h}, func() {
		if !found || h < oldest {
			oldest, found = h, true
		}
	}); err != nil {
		return u, err
	}
	if found {
		u.OldestRaw = time.Unix(oldest, 0).UTC()
	}
	return u, nil
}
