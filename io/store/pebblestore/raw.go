package pebblestore

import (
	"context"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/io/store"
)

// WriteRaw stores clicks in one batch; a click already stored is overwritten
// with itself, one older than the raw horizon (RawHorizon) is not stored.
func (s *Store) WriteRaw(ctx context.Context, clicks []click.Click) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	for i := range clicks {
		if err := store.CheckClick(&clicks[i]); err != nil {
			return err
		}
	}
	if len(clicks) == 0 {
		return nil
	}
	b := s.db.NewBatch()
	defer b.Close()
	var kb, vb []byte
	horizon := s.rawHorizon.Load()
	for i := range clicks {
		c := &clicks[i]
		if c.Time < horizon { // raw retention deleted its hour already
			continue
		}
		kb = rawKey(kb[:0], c)
		vb = rawValue(vb[:0], c)
		if err := b.Set(kb, vb, nil); err != nil {
			return unavailable("write raw", err)
		}
	}
	if b.Empty() {
		return nil
	}
	if err := s.apply(func() error { return b.Commit(s.wo) }); err != nil {
		return unavailable("write raw", err)
	}
	return nil
}

// maxShards bounds RawShards' n.
const maxShards = 1 << 16

// ceilMS is the first whole millisecond at or after t.
func ceilMS(t time.Time) int64 {
	ms := t.UnixMilli()
	if t.Sub(time.UnixMilli(ms)) > 0 {
		ms++
	}
	return ms
}

// RawShards cuts [from, to) into at most n contiguous event-time slices of
// whole milliseconds. Token is unused: the slice's time range is its key range.
func (s *Store) RawShards(ctx context.Context, from, to time.Time, n int) ([]store.Shard, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	return TimeShards(from, to, n)
}

// TimeShards splits [from, to) into at most n slices of whole milliseconds.
func TimeShards(from, to time.Time, n int) ([]store.Shard, error) {
	if n < 1 {
		return nil, fmt.Errorf("%w: %d shards", store.ErrInvalid, n)
	}
	if to.Before(from) {
		return nil, fmt.Errorf("%w: time range ends before it starts", store.ErrInvalid)
	}
	lo, hi := ceilMS(from), ceilMS(to)
	if lo >= hi {
		return []store.Shard{}, nil
	}
	n = min(n, maxShards)
	if span := hi - lo; span < int64(n) {
		n = int(span)
	}
	span := uint64(hi - lo)
	out := make([]store.Shard, 0, n)
	prev := lo
	for i := 1; i <= n; i++ {
		next := hi
		if i < n {
			next = lo + int64(span/uint64(n)*uint64(i)+span%uint64(n)*uint64(i)/uint64(n))
		}
		out = append(out, store.Shard{From: time.UnixMilli(prev).UTC(), To: time.UnixMilli(next).UTC()})
		prev = next
	}
	return out, nil
}

// ReadRaw calls fn for every click with event time in the shard's range.
func (s *Store) ReadRaw(ctx context.Context, shard store.Shard, fn func(click.Click) error) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	lo, hi := ceilMS(shard.From), ceilMS(shard.To)
	if lo > hi {
		return fmt.Errorf("%w: shard ends before it starts", store.ErrInvalid)
	}
	if lo == hi {
		return nil
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: rawTimeKey(lo), UpperBound: rawTimeKey(hi)})
	if err != nil {
		return unavailable("read raw", err)
	}
	defer it.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		c, err := decodeRaw(it.Key(), it.Value())
		if err != nil {
			return unavailable("read raw", err)
		}
		if err := fn(c); err != nil {
			return err
		}
		if n++; n%4096 == 0 {
			if err := s.check(ctx); err != nil {
				return err
			}
		}
	}
	if err := it.Error(); err != nil {
		return unavailable("read raw", err)
	}
	return nil
}

// ReadRawAd is store.AdRawReader. Raw keys lead with the event time, so it
// reads the range and keeps the ad's clicks.
func (s *Store) ReadRawAd(ctx context.Context, adID string, from, to time.Time, fn func(click.Click) error) error {
	if err := store.CheckID("ad id", adID); err != nil {
		return err
	}
	if to.Before(from) {
		return fmt.Errorf("%w: time range ends before it starts", store.ErrInvalid)
	}
	return s.ReadRaw(ctx, store.Shard{From: from, To: to}, func(c click.Click) error {
		if c.AdID != adID {
			return nil
		}
		return fn(c)
	})
}
