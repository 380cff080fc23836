package pebblestore

import (
	"context"
	"sort"
	"strconv"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/adclick/adclick/io/store"
)

// Usage reports bytes and rows of the raw clicks and of each generation's
// counts and top lists. Both are estimates from the SSTables, which is cheap
// (no row is read): bytes on disk (Pebble's EstimateDiskUsage), rows the
// SSTables' entries minus deletions, each table's share of the range by
// bytes. What is still only in the memtable is not counted, overwritten
// versions not yet compacted are. OldestRaw is exact, to the minute.
func (s *Store) Usage(ctx context.Context) (store.Usage, error) {
	var u store.Usage
	if err := s.check(ctx); err != nil {
		return u, err
	}
	raw, err := s.rangeUsage(store.KindRaw, -1, []byte{pRaw})
	if err != nil {
		return u, err
	}
	u.Kinds = append(u.Kinds, raw)
	gens := s.generations()
	sort.Slice(gens, func(i, j int) bool { return gens[i] < gens[j] })
	for _, g := range gens {
		for _, k := range []struct {
			kind   string
			prefix byte
		}{{store.KindCounts, pCount}, {store.KindTops, pTop}} {
			ku, err := s.rangeUsage(k.kind, g, putI64([]byte{k.prefix}, int64(g)))
			if err != nil {
				return u, err
			}
			u.Kinds = append(u.Kinds, ku)
		}
	}
	p := []byte{pRaw}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return u, unavailable("usage", err)
	}
	defer it.Close()
	if it.First() && len(it.Key()) >= 9 {
		u.OldestRaw = time.UnixMilli(getI64(it.Key()[1:9])).UTC().Truncate(time.Minute)
	}
	if err := it.Error(); err != nil {
		return u, unavailable("usage", err)
	}
	return u, nil
}

func (s *Store) rangeUsage(kind string, gen store.Generation, prefix []byte) (store.KindUsage, error) {
	lo, hi := prefix, prefixEnd(prefix)
	ku := store.KindUsage{Kind: kind, Gen: gen, Estimated: true}
	b, err := s.db.EstimateDiskUsage(lo, hi)
	if err != nil {
		return ku, unavailable("usage", err)
	}
	ku.Bytes = int64(b)
	levels, err := s.db.SSTables(pebble.WithProperties(), pebble.WithKeyRangeFilter(lo, hi), pebble.WithApproximateSpanBytes())
	if err != nil {
		return ku, unavailable("usage", err)
	}
	var rows float64
	for _, tables := range levels {
		for _, t := range tables {
			p := t.Properties
			if p == nil || t.Size == 0 || p.NumEntries <= p.NumDeletions {
				continue
			}
			span, err := strconv.ParseUint(p.UserProperties["approximate-span-bytes"], 10, 64)
			if err != nil {
				span = t.Size
			}
			rows += float64(p.NumEntries-p.NumDeletions) * min(1, float64(span)/float64(t.Size))
		}
	}
	ku.Rows = int64(rows)
	return ku, nil
}
