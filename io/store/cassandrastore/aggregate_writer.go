package cassandrastore

import (
	"context"
	"errors"
	"fmt"

	"github.com/gocql/gocql"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
)

// Upsert writes recs into gen, overwriting by key (within one call, the last
// record of a key wins).
func (s *Store) Upsert(ctx context.Context, gen store.Generation, recs []result.Record) error {
	return s.write(ctx, gen, recs, false)
}

// Merge writes recs into gen, merging with what is stored
// (store.AggregateStore.Merge). A count is written with its value as the
// cell's write timestamp, so Cassandra's own last-write-wins keeps the
// largest whatever the order of arrival and without a read; that is also why
// one generation must not mix Upsert (wall-clock timestamps) and Merge. A top
// list is read and merged: one read per list, and lists are few.
func (s *Store) Merge(ctx context.Context, gen store.Generation, recs []result.Record) error {
	return s.write(ctx, gen, recs, true)
}

func (s *Store) write(ctx context.Context, gen store.Generation, recs []result.Record, merge bool) error {
	for _, r := range recs {
		if err := store.CheckRecord(r); err != nil {
			return err
		}
	}
	if err := s.writable(ctx, gen); err != nil {
		return err
	}
	if len(recs) == 0 {
		return nil
	}
	if merge {
		var err error
		if recs, err = s.mergeTops(ctx, gen, recs); err != nil {
			return err
		}
	}
	withDigest, err := s.hasDigests(ctx)
	if err != nil {
		return err
	}
	counts, tops := aggregateStatements(int64(gen), recs, merge, withDigest)
	// Index rows first, so every row a scan should find is named.
	index, groups := indexStatements(int64(gen), counts, tops)
	if err := s.writeGroups(ctx, "upsert_index", index); err != nil {
		return err
	}
	return s.writeGroups(ctx, "upsert", groups)
}

// countPartition and topPartition are the partition keys of the counts and
// tops tables.
type (
	countPartition struct {
		ad, filter string
		day        int64
	}
	topPartition struct {
		window int
		day    int64
	}
)

// aggregateStatements turns recs into INSERTs, grouped by partition. Within
// one call the last record of a key wins, except that merged counts are all
// written: their write timestamps decide.
//
// withDigest writes each count's digest in the same row, with the count's
// write timestamp, so whichever count wins carries its own digest.
func aggregateStatements(g int64, recs []result.Record, merge, withDigest bool) (map[countPartition][]stmt, map[topPartition][]stmt) {
	counts := map[countPartition][]stmt{}
	tops := map[topPartition][]stmt{}
	seen := make(map[string]bool, len(recs))
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		k := r.Key()
		if seen[k] && !(merge && r.Top == nil) {
			continue
		}
		seen[k] = true
		var ad, filter string
		var m, n int64
		var dg result.Digest
		switch {
		case r.Count != nil:
			ad, m, n, dg = r.Count.AdID, r.Count.Minute, r.Count.Count, r.Count.Digest
		case r.Filtered != nil:
			ad, filter, m, n, dg = r.Filtered.AdID, r.Filtered.FilterID, r.Filtered.Minute, r.Filtered.Count, r.Filtered.Digest
		default:
			t := r.Top
			p := topPartition{t.WindowSize, dayOf(t.Minute)}
			tops[p] = append(tops[p], stmt{"INSERT INTO tops (gen, window_size, day, minute, ads) VALUES (?, ?, ?, ?, ?)",
				[]any{g, t.WindowSize, p.day, t.Minute, store.AppendTopAds(nil, t.Ads)}})
			continue
		}
		p := countPartition{ad, filter, dayOf(m)}
		cols, marks, args := "gen, ad_id, filter_id, day, minute, count", "?, ?, ?, ?, ?, ?", []any{g, ad, filter, p.day, m, n}
		if withDigest {
			cols, marks, args = cols+", digest", marks+", ?", append(args, digestValue(dg))
		}
		q := "INSERT INTO counts (" + cols + ") VALUES (" + marks + ")"
		if merge {
			q, args = q+" USING TIMESTAMP ?", append(args, n)
		}
		counts[p] = append(counts[p], stmt{q, args})
	}
	return counts, tops
}

// indexStatements returns the index rows that name the partitions of counts
// and tops (grouped by index partition), and those partitions' statements.
func indexStatements(g int64, counts map[countPartition][]stmt, tops map[topPartition][]stmt) (index, groups [][]stmt) {
	type spk struct {
		day    int64
		bucket int
	}
	type dpk struct{ window int }
	byIndex := map[any][]stmt{} // by index partition
	groups = make([][]stmt, 0, len(counts)+len(tops))
	for p, sts := range counts {
		k := spk{p.day, bucketOf(p.ad)}
		byIndex[k] = append(byIndex[k], stmt{"INSERT INTO count_series (gen, day, bucket, ad_id, filter_id) VALUES (?, ?, ?, ?, ?)",
			[]any{g, p.day, bucketOf(p.ad), p.ad, p.filter}})
		groups = append(groups, sts)
	}
	for p, sts := range tops {
		byIndex[dpk{p.window}] = append(byIndex[dpk{p.window}], stmt{"INSERT INTO top_days (gen, window_size, day) VALUES (?, ?, ?)", []any{g, p.window, p.day}})
		groups = append(groups, sts)
	}
	return values(byIndex), groups
}

// mergeTops replaces each top list of recs by its merge with the stored list
// and with the batch's earlier lists of the same key, so the last one of a
// key carries the merge.
func (s *Store) mergeTops(ctx context.Context, gen store.Generation, recs []result.Record) ([]result.Record, error) {
	type tk struct {
		w int
		m int64
	}
	merged := map[tk][]result.AdCount{}
	out := make([]result.Record, len(recs))
	for i, r := range recs {
		out[i] = r
		if r.Top == nil {
			continue
		}
		k := tk{r.Top.WindowSize, r.Top.Minute}
		prev, ok := merged[k]
		if !ok {
			rctx, cancel := context.WithTimeout(ctx, s.o.ReadTimeout)
			var blob []byte
			err := s.s.Query("SELECT ads FROM tops WHERE gen = ? AND window_size = ? AND day = ? AND minute = ?",
				int64(gen), k.w, dayOf(k.m), k.m).WithContext(rctx).Consistency(s.rcons).Scan(&blob)
			if err != nil && !errors.Is(err, gocql.ErrNotFound) {
				err = s.readErr("merge top", rctx, err)
			}
			cancel()
			switch {
			case errors.Is(err, gocql.ErrNotFound):
			case err != nil:
				return nil, err
			default:
				if prev, err = store.DecodeTopAds(blob); err != nil {
					return nil, fmt.Errorf("%w: cassandrastore: merge top: %v", store.ErrUnavailable, err)
				}
			}
		}
		ads := store.MergeTop(prev, r.Top.Ads)
		merged[k] = ads
		t := *r.Top
		t.Ads = ads
		out[i] = result.Record{Top: &t}
	}
	return out, nil
}
