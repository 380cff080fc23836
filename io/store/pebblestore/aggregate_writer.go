package pebblestore

import (
	"context"
	"errors"
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
		var d result.Digest
		switch {
		case r.Count != nil:
			kb = countKey(kb[:0], gen, r.Count.AdID, "", r.Count.Minute)
			n, d = r.Count.Count, r.Count.Digest
		case r.Filtered != nil:
			kb = countKey(kb[:0], gen, r.Filtered.AdID, r.Filtered.FilterID, r.Filtered.Minute)
			n, d = r.Filtered.Count, r.Filtered.Digest
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
					// The larger count wins with its digest; at equal
					// counts a known digest replaces an unknown one.
					if c, od, valid := decodeCountValue(old); valid && (c > n || (c == n && (od.Known || !d.Known))) {
						continue
					}
				}
			}
			vb = appendCountValue(vb[:0], n, d)
		}
		if err := b.Set(kb, vb, nil); err != nil {
			return unavailable("upsert", err)
		}
	}
	if err := s.apply(func() error { return b.Commit(s.wo) }); err != nil {
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
