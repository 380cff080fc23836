package pebblestore

import (
	"context"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
)

var _ store.TooLateStore = (*Store)(nil)

// Too-late rows: pTooLate | minute | gen | ad | 16-byte hash → empty. The
// set of an (ad, minute) is one key range; the minute first so that raw
// retention removes every row of the expired hours with one range deletion.

func tooLatePrefix(b []byte, gen store.Generation, ad string, minute int64) []byte {
	b = append(b, pTooLate)
	b = putI64(b, minute)
	b = putI64(b, int64(gen))
	return putStr(b, ad)
}

// AddTooLate is store.TooLateStore: each hash is a key, so adding one again
// overwrites it with itself. Rows of minutes wholly before the raw horizon
// are not stored, as their clicks are not (WriteRaw).
func (s *Store) AddTooLate(ctx context.Context, gen store.Generation, recs []result.TooLate) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	for i := range recs {
		if err := store.CheckTooLate(gen, &recs[i]); err != nil {
			return err
		}
	}
	b := s.db.NewBatch()
	defer b.Close()
	horizon := s.rawHorizon.Load()
	var kb []byte
	for i := range recs {
		t := &recs[i]
		if (t.Minute+60)*1000 <= horizon {
			continue
		}
		p := tooLatePrefix(nil, gen, t.AdID, t.Minute)
		for _, h := range t.Hashes {
			kb = h.AppendBytes(append(kb[:0], p...))
			if err := b.Set(kb, nil, nil); err != nil {
				return unavailable("write too-late", err)
			}
		}
	}
	if b.Empty() {
		return nil
	}
	if err := s.apply(func() error { return b.Commit(s.wo) }); err != nil {
		return unavailable("write too-late", err)
	}
	return nil
}

// TooLate is store.TooLateStore.
func (s *Store) TooLate(ctx context.Context, gen store.Generation, adID string, minute int64) ([]result.Digest, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if err := store.CheckTooLateQuery(gen, adID, minute); err != nil {
		return nil, err
	}
	p := tooLatePrefix(nil, gen, adID, minute)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, unavailable("read too-late", err)
	}
	defer it.Close()
	var out []result.Digest
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) != len(p)+16 {
			return nil, unavailable("read too-late", fmt.Errorf("bad too-late key of %d bytes", len(k)))
		}
		out = append(out, result.DigestFromBytes(k[len(p):]))
	}
	if err := it.Error(); err != nil {
		return nil, unavailable("read too-late", err)
	}
	return out, nil
}

// expireTooLate deletes the too-late rows of the whole hours before before,
// with the raw clicks they name (expireRaw).
func (s *Store) expireTooLate(ctx context.Context, before time.Time) error {
	end := putI64([]byte{pTooLate}, store.FloorHour(before.Unix()))
	return s.deleteRange(ctx, []byte{pTooLate}, end, true)
}
