package cassandrastore

import (
	"context"
	"fmt"
	"time"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/io/store"
)

// WriteRaw stores clicks; a click already stored is overwritten with itself,
// one older than the raw horizon (RawHorizon) is not written. Every row
// carries a TTL of RawRetention from its write: a backstop that needs no
// collection (Collect deletes by event time). The partition index rows are
// written before the clicks they name, and outlive them by an hour.
func (s *Store) WriteRaw(ctx context.Context, clicks []click.Click) error {
	for i := range clicks {
		if err := store.CheckClick(&clicks[i]); err != nil {
			return err
		}
	}
	if len(clicks) == 0 {
		return nil
	}
	type pk struct {
		ad   string
		hour int64
	}
	type ck struct {
		pk
		ts int64
		id string
	}
	byPart := map[pk][]stmt{}
	seen := make(map[ck]bool, len(clicks))
	ttl := int(s.o.RawRetention / time.Second)
	ins := "INSERT INTO raw_clicks (ad_id, hour, ts, event_id, user_id, ip, country, device, ad_format) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) USING TTL ?"
	horizon := s.rawHorizon.Load()
	for i := len(clicks) - 1; i >= 0; i-- { // the last write of a key wins
		c := &clicks[i]
		p := pk{c.AdID, hourOf(c.Time)}
		k := ck{p, c.Time, c.EventID}
		if seen[k] || c.Time < horizon {
			continue
		}
		seen[k] = true
		byPart[p] = append(byPart[p], stmt{ins, []any{c.AdID, p.hour, c.Time, c.EventID, c.UserID, c.IP, c.Country, c.Device, c.AdFormat, ttl}})
	}
	index := map[any][]stmt{} // by raw_partitions partition (hour)
	groups := make([][]stmt, 0, len(byPart))
	for p, g := range byPart {
		index[p.hour] = append(index[p.hour], stmt{"INSERT INTO raw_partitions (hour, tok, ad_id) VALUES (?, ?, ?) USING TTL ?",
			[]any{p.hour, PartitionToken(p.ad, p.hour), p.ad, ttl + 3600}})
		groups = append(groups, g)
	}
	if err := s.writeGroups(ctx, "write_raw_index", values(index)); err != nil {
		return err
	}
	return s.writeGroups(ctx, "write_raw", groups)
}

// RawShards splits [from, to) into about n token ranges of the ring, each
// covering the whole time range; Shard.Token is the encoded TokenRange.
func (s *Store) RawShards(ctx context.Context, from, to time.Time, n int) ([]store.Shard, error) {
	if n < 1 {
		return nil, fmt.Errorf("%w: %d shards", store.ErrInvalid, n)
	}
	if to.Before(from) {
		return nil, fmt.Errorf("%w: time range ends before it starts", store.ErrInvalid)
	}
	if !from.Before(to) {
		return []store.Shard{}, nil
	}
	var out []store.Shard
	for _, r := range FullRing.Split(min(n, 1<<16)) {
		out = append(out, store.Shard{From: from, To: to, Token: r.encode()})
	}
	return out, nil
}

// ReadRaw reads the shard: for every hour of its time range, the partitions
// whose token lies in its range, then their clicks in the time range.
func (s *Store) ReadRaw(ctx context.Context, shard store.Shard, fn func(click.Click) error) error {
	r, err := decodeRange(shard.Token)
	if err != nil {
		return err
	}
	lo, hi := ceilMS(shard.From), ceilMS(shard.To)
	if lo > hi {
		return fmt.Errorf("%w: shard ends before it starts", store.ErrInvalid)
	}
	for h := hourOf(lo); h*1000 < hi; h += 3600 {
		if err := ctxDone(ctx); err != nil {
			return err
		}
		var ads []string
		qctx, cancel := context.WithTimeout(ctx, s.o.ReadTimeout)
		it := s.s.Query("SELECT ad_id FROM raw_partitions WHERE hour = ? AND tok >= ? AND tok <= ?", h, r.Lo, r.Hi).
			WithContext(qctx).Consistency(s.rcons).PageSize(5000).Iter()
		var ad string
		for it.Scan(&ad) {
			ads = append(ads, ad)
		}
		err := it.Close()
		cancel()
		if err != nil {
			return s.readErr("read_raw", qctx, err)
		}
		for _, ad := range ads {
			if err := ctxDone(ctx); err != nil {
				return err
			}
			if err := s.readPartition(ctx, ad, h, max(lo, h*1000), min(hi, (h+3600)*1000), fn); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Store) readPartition(ctx context.Context, ad string, hour, lo, hi int64, fn func(click.Click) error) error {
	qctx, cancel := context.WithTimeout(ctx, s.o.ReadTimeout)
	defer cancel()
	it := s.s.Query("SELECT ts, event_id, user_id, ip, country, device, ad_format FROM raw_clicks WHERE ad_id = ? AND hour = ? AND ts >= ? AND ts < ?",
		ad, hour, lo, hi).WithContext(qctx).Consistency(s.rcons).PageSize(5000).Iter()
	c := click.Click{AdID: ad}
	for it.Scan(&c.Time, &c.EventID, &c.UserID, &c.IP, &c.Country, &c.Device, &c.AdFormat) {
		if err := fn(c); err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return s.readErr("read_raw", qctx, err)
	}
	return nil
}

// ReadRawAd is store.AdRawReader: the ad's partition of each hour of the
// range, nothing else.
func (s *Store) ReadRawAd(ctx context.Context, adID string, from, to time.Time, fn func(click.Click) error) error {
	if err := store.CheckID("ad id", adID); err != nil {
		return err
	}
	if to.Before(from) {
		return fmt.Errorf("%w: time range ends before it starts", store.ErrInvalid)
	}
	lo, hi := ceilMS(from), ceilMS(to)
	for h := hourOf(lo); h*1000 < hi; h += 3600 {
		if err := ctxDone(ctx); err != nil {
			return err
		}
		if err := s.readPartition(ctx, adID, h, max(lo, h*1000), min(hi, (h+3600)*1000), fn); err != nil {
			return err
		}
	}
	return nil
}
