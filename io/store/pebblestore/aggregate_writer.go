package pebblestore

import (
	"context"
	"fmt"

	"github.com/cockroachdb/pebble"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
)

func (s *Store) writable(gen store.Generation) error {
	if gen == store.LiveGeneration {
		return nil
	}
	if known := s.genKnow.Load(); known != nil {
		if ok, reserved := (*known)[gen]; ok {
			return nil
		} else if reserved {
			return fmt.Errorf("%w: generation %d was abandoned and collected", store.ErrInvalid, gen)
		}
	}
	return fmt.Errorf("%w: generation %d was not reserved with NewGeneration", store.ErrInvalid, gen)
}

// Upsert writes recs into gen in one batch, overwriting by key.
func (s *Store) Upsert(ctx context.Context, gen store.Generation, recs []result.Record) error {
	return s.write(ctx, gen, recs, false)
}

// Merge writes recs into gen in one batch, merging with what is stored
// (store.AggregateStore.Merge) by Pebble merge operands: no read per key.
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
	// Merge writes operands blind; the merger (merger.go) combines them on
	// reads and compactions.
	put := (*pebble.Batch).Set
	if merge {
		put = (*pebble.Batch).Merge
	}
	b := s.db.NewBatch()
	defer b.Close()
	var kb, vb []byte
	for _, r := range recs {
		switch {
		case r.Count != nil:
			kb = countKey(kb[:0], gen, r.Count.AdID, "", r.Count.Minute)
			vb = appendCountValue(vb[:0], r.Count.Count, r.Count.Digest)
		case r.Filtered != nil:
			kb = countKey(kb[:0], gen, r.Filtered.AdID, r.Filtered.FilterID, r.Filtered.Minute)
			vb = appendCountValue(vb[:0], r.Filtered.Count, r.Filtered.Digest)
		default:
			kb = topKey(kb[:0], gen, r.Top.WindowSize, r.Top.Minute)
			vb = store.AppendTopAds(vb[:0], r.Top.Ads)
		}
		if err := put(b, kb, vb, nil); err != nil {
			return unavailable("upsert", err)
		}
	}
	if err := s.apply(func() error { return b.Commit(s.wo) }); err != nil {
		return unavailable("upsert", err)
	}
	return nil
}
