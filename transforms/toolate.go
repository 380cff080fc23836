package transforms

import (
	"cmp"
	"encoding/binary"
	"slices"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
)

// The fused stage is the only place that knows which clicks were too late:
// it judges each against the source watermark of the batch it came in
// (bundleAgg.addID), and that watermark is not stored anywhere. So it
// records the event-id hashes of those clicks per (ad, minute) and emits
// them as result.TooLate records, which the results topic carries to the
// store for services/explain. They bypass the count stage: its state for
// such an old minute has already expired, which is why the click was too
// late in the first place.

// noteTooLate records that id, a click of k, was judged too late. It counts
// towards the bundle's held clicks, so a flood of too-late clicks flushes
// the bundle early like any other: the record is bounded by MaxBundleClicks.
func (a *bundleAgg) noteTooLate(k adMinute, id clickID) {
	if a.tooLate == nil {
		a.tooLate = make(map[adMinute][]clickID)
	}
	a.tooLate[k] = append(a.tooLate[k], id)
	a.held++
}

// absorbTooLate moves o's too-late ids into a (the per-worker shards of one
// bundle hold disjoint ids: a concatenation).
func (a *bundleAgg) absorbTooLate(o *bundleAgg) {
	for k, ids := range o.tooLate {
		if a.tooLate == nil {
			a.tooLate = make(map[adMinute][]clickID)
		}
		a.tooLate[k] = append(a.tooLate[k], ids...)
	}
	clear(o.tooLate)
}

// flushTooLate emits the recorded too-late ids as result.TooLate records,
// each id once per bundle (copies of one click are judged alike: the check
// runs before dedup), at most result.MaxTooLateHashes per record, stamped
// with the source watermark. Batch never records any.
func (a *bundleAgg) flushTooLate(emit func(beam.EventTime, result.Record)) {
	if len(a.tooLate) == 0 {
		return
	}
	ts := mtime.FromMilliseconds(a.wm)
	if a.wm == click.NoWatermark {
		ts = mtime.MinTimestamp
	}
	for k, ids := range a.tooLate {
		slices.SortFunc(ids, func(x, y clickID) int {
			if c := cmp.Compare(x.Hi, y.Hi); c != 0 {
				return c
			}
			return cmp.Compare(x.Lo, y.Lo)
		})
		ids = slices.Compact(ids)
		hs := make([]result.Digest, len(ids))
		for i, id := range ids {
			hs[i] = id.digest()
		}
		for _, r := range result.SplitTooLate(k.ad, k.minute, hs) {
			emit(ts, r)
		}
	}
	clear(a.tooLate)
}

// appendTooLateRecord is the Beam coder's form of a TooLate record (after
// its tag, register.go): ad, minute, then the hashes' 16-byte forms.
func appendTooLateRecord(b []byte, t *result.TooLate) []byte {
	b = appendStr(b, t.AdID)
	b = binary.AppendVarint(b, t.Minute)
	b = binary.AppendUvarint(b, uint64(len(t.Hashes)))
	for _, h := range t.Hashes {
		b = h.AppendBytes(b)
	}
	return b
}

// tooLate reads what appendTooLateRecord wrote.
func (r *recReader) tooLate() *result.TooLate {
	t := &result.TooLate{AdID: r.str(), Minute: r.varint()}
	n, k := binary.Uvarint(r.b)
	if k <= 0 || n > uint64(len(r.b)-k)/16 {
		r.err = errCorruptRecord
		return nil
	}
	r.b = r.b[k:]
	t.Hashes = make([]result.Digest, n)
	for i := range t.Hashes {
		t.Hashes[i] = result.DigestFromBytes(r.b[:16])
		r.b = r.b[16:]
	}
	return t
}
