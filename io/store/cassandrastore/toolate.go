package cassandrastore

import (
	"context"
	"fmt"
	"time"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
)

var _ store.TooLateStore = (*Store)(nil)

// The too_late table (schema.cql): a partition is one (generation, ad,
// event-time hour), clustered by minute then hash, so an (ad, minute)'s set
// is one clustering slice and raw retention deletes whole partitions. Rows
// follow the raw clicks' rule: a TTL of RawRetention from the write, and
// Collect deletes the hours raw retention deletes (expireTooLate).

// errNoTooLateTable: the keyspace was migrated before the table existed.
var errNoTooLateTable = fmt.Errorf("%w: cassandrastore: the keyspace has no too_late table; run `adclick migrate`", store.ErrInvalid)

// AddTooLate is store.TooLateStore: each hash is a row, so adding it again
// rewrites it. Rows of minutes wholly before the raw horizon are not
// written, as their clicks are not (WriteRaw).
func (s *Store) AddTooLate(ctx context.Context, gen store.Generation, recs []result.TooLate) error {
	for i := range recs {
		if err := store.CheckTooLate(gen, &recs[i]); err != nil {
			return err
		}
	}
	type pk struct {
		ad   string
		hour int64
	}
	byPart := map[pk][]stmt{}
	ttl := int(s.o.RawRetention / time.Second)
	ins := "INSERT INTO too_late (gen, ad_id, hour, minute, hash) VALUES (?, ?, ?, ?, ?) USING TTL ?"
	horizon := s.rawHorizon.Load()
	for i := range recs {
		t := &recs[i]
		if (t.Minute+60)*1000 <= horizon {
			continue
		}
		p := pk{t.AdID, hourOf(t.Minute * 1000)}
		for _, h := range t.Hashes {
			byPart[p] = append(byPart[p], stmt{ins, []any{int64(gen), t.AdID, p.hour, t.Minute, h.AppendBytes(make([]byte, 0, 16)), ttl}})
		}
	}
	groups := make([][]stmt, 0, len(byPart))
	for _, g := range byPart {
		groups = append(groups, g)
	}
	err := s.writeGroups(ctx, "write_too_late", groups)
	if err != nil && missingColumn(err, "too_late") {
		return errNoTooLateTable
	}
	return err
}

// TooLate is store.TooLateStore. A keyspace without the table has recorded
// nothing.
func (s *Store) TooLate(ctx context.Context, gen store.Generation, adID string, minute int64) ([]result.Digest, error) {
	if err := store.CheckTooLateQuery(gen, adID, minute); err != nil {
		return nil, err
	}
	qctx, cancel := context.WithTimeout(ctx, s.o.ReadTimeout)
	defer cancel()
	it := s.s.Query("SELECT hash FROM too_late WHERE gen = ? AND ad_id = ? AND hour = ? AND minute = ?",
		int64(gen), adID, hourOf(minute*1000), minute).WithContext(qctx).Consistency(s.rcons).PageSize(5000).Iter()
	var out []result.Digest
	var b []byte
	var bad int
	for it.Scan(&b) {
		if len(b) != 16 {
			bad = len(b)
			continue
		}
		out = append(out, result.DigestFromBytes(b))
	}
	err := it.Close()
	switch {
	case err != nil && missingColumn(err, "too_late"):
		return nil, nil
	case err != nil:
		return nil, s.readErr("read_too_late", qctx, err)
	case bad != 0:
		return nil, fmt.Errorf("%w: cassandrastore: a too-late hash of %d bytes", store.ErrUnavailable, bad)
	}
	return out, nil
}

// expireTooLate deletes the too_late partitions of the hours before
// before's, with the raw clicks they name (expireRaw).
func (s *Store) expireTooLate(ctx context.Context, before time.Time) error {
	type part struct {
		gen, hour int64
		ad        string
	}
	var parts []part
	var p part
	qctx, cancel := context.WithTimeout(ctx, 6*s.o.ReadTimeout)
	defer cancel()
	it := s.s.Query("SELECT DISTINCT gen, ad_id, hour FROM too_late").WithContext(qctx).Consistency(s.rcons).PageSize(5000).Iter()
	for it.Scan(&p.gen, &p.ad, &p.hour) {
		parts = append(parts, p)
	}
	if err := it.Close(); err != nil {
		if missingColumn(err, "too_late") { // not migrated: nothing to expire
			return nil
		}
		return s.readErr("collect_too_late", qctx, err)
	}
	cut := store.FloorHour(before.Unix())
	var dels []stmt
	for _, p := range parts {
		if p.hour < cut {
			dels = append(dels, stmt{"DELETE FROM too_late WHERE gen = ? AND ad_id = ? AND hour = ?", []any{p.gen, p.ad, p.hour}})
		}
	}
	return s.writeEach(ctx, dels)
}
