package cassandrastore

import (
	"context"
	"fmt"
	"time"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
)

// Digests live in counts.digest, which `adclick migrate` adds (schema.cql).
// A keyspace not migrated yet has no such column: counts are then written
// and read without digests (unknown), and the column is looked for again
// after digestRecheck, so a migration made while the process runs is picked
// up without a restart.
const digestRecheck = time.Minute

// digestState is what the last probe found.
type digestState struct {
	has bool
	at  time.Time
}

// hasDigests reports whether the keyspace has counts.digest.
func (s *Store) hasDigests(ctx context.Context) (bool, error) {
	if st := s.digests.Load(); st != nil && (st.has || time.Since(st.at) < digestRecheck) {
		return st.has, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.ReadTimeout)
	defer cancel()
	it := s.s.Query("SELECT digest FROM counts LIMIT 1").WithContext(ctx).Consistency(s.rcons).Iter()
	err := it.Close()
	switch {
	case err == nil:
		s.digests.Store(&digestState{has: true, at: time.Now()})
		return true, nil
	case missingColumn(err, "digest"):
		s.digests.Store(&digestState{has: false, at: time.Now()})
		return false, nil
	}
	return false, s.readErr("probe digest column", ctx, err)
}

// digestValue is a digest's cell value: its 16 bytes, or nil (null) when
// unknown — so a larger count without a digest also replaces a smaller
// count's digest, never leaving a count beside another count's digest.
func digestValue(d result.Digest) []byte {
	if !d.Known {
		return nil
	}
	return d.AppendBytes(make([]byte, 0, 16))
}

// digestOf reads a cell written by digestValue.
func digestOf(b []byte) (result.Digest, error) {
	switch len(b) {
	case 0:
		return result.Digest{}, nil
	case 16:
		return result.DigestFromBytes(b), nil
	}
	return result.Digest{}, fmt.Errorf("%w: cassandrastore: digest of %d bytes", store.ErrUnavailable, len(b))
}

// CountDigest is Count with the digest of the counted ids: the sum of the
// minutes' digests (their sets are disjoint), unknown if any minute's is or
// the keyspace has no digests yet.
func (s *Store) CountDigest(ctx context.Context, adID, filterID string, from, to int64) (int64, result.Digest, error) {
	if err := store.CheckID("ad id", adID); err != nil {
		return 0, result.Digest{}, err
	}
	if len(filterID) > store.MaxIDBytes {
		return 0, result.Digest{}, fmt.Errorf("%w: filter id is %d bytes, limit %d", store.ErrInvalid, len(filterID), store.MaxIDBytes)
	}
	if err := store.CheckRange(from, to); err != nil {
		return 0, result.Digest{}, err
	}
	has, err := s.hasDigests(ctx)
	if err != nil {
		return 0, result.Digest{}, err
	}
	if !has {
		n, err := s.Count(ctx, adID, filterID, from, to)
		return n, result.Digest{}, err
	}
	sv, err := s.servingNow(ctx)
	if err != nil {
		return 0, result.Digest{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.ReadTimeout)
	defer cancel()
	var total int64
	digest := result.Digest{Known: true}
	for _, seg := range sv.Segments(from, to) {
		for d := dayOf(seg.From); d < seg.To; d += day {
			if err := ctxDone(ctx); err != nil {
				return 0, result.Digest{}, err
			}
			it := s.s.Query("SELECT count, digest FROM counts WHERE gen = ? AND ad_id = ? AND filter_id = ? AND day = ? AND minute >= ? AND minute < ?",
				int64(seg.Gen), adID, filterID, d, max(seg.From, d), min(seg.To, d+day)).
				WithContext(ctx).Consistency(s.rcons).PageSize(5000).Iter()
			var n int64
			var b []byte
			for it.Scan(&n, &b) {
				md, err := digestOf(b)
				if err != nil {
					it.Close()
					return 0, result.Digest{}, err
				}
				total += n
				digest = digest.Add(md)
			}
			if err := it.Close(); err != nil {
				return 0, result.Digest{}, s.readErr("count", ctx, err)
			}
		}
	}
	return total, digest, nil
}
