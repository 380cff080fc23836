package pebblestore

import (
	"io"

	"github.com/cockroachdb/pebble"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
)

// mergerName is stored in the database's OPTIONS file; Pebble refuses to open
// a database with another merger's name (upgradeMerger moves databases from
// before it).
const mergerName = "adclick.aggregates.v1"

// merger lets Merge write its rows blind (pebble.Batch.Merge) and leaves the
// merging to Pebble's reads and compactions: a read-modify-write per row cost
// the DB writer a point read of every key it wrote, 20 % of the CPU at 2M ads
// where nearly every key is new. The operation is store.AggregateStore.Merge's:
//
//   - a count keeps the operand with the larger count, at equal counts one
//     with a known digest over one without, at a full tie the oldest — a
//     maximum with a fixed tie rule, so associative as Pebble requires;
//   - a top list is store.MergeTop of all operands at once (each ad at its
//     largest count, ranked, the longest operand's length kept). Compactions
//     may merge a newer subset first: for the streaming job's panes (counts
//     only grow, lists only lengthen) and for a final list merged with panes
//     recomputed from part of the data, that gives the same list, by the
//     argument on MergeTop;
//   - any other key (never merged today) keeps its newest operand.
//
// A corrupt operand loses to any valid one, as the read-modify-write let a
// new row replace a corrupt stored value.
var merger = &pebble.Merger{
	Name: mergerName,
	Merge: func(key, value []byte) (pebble.ValueMerger, error) {
		var m valueMerger
		switch {
		case len(key) > 0 && key[0] == pCount:
			m = &countMerger{}
		case len(key) > 0 && key[0] == pTop:
			m = &topMerger{}
		default:
			m = &newestMerger{}
		}
		if err := m.MergeNewer(value); err != nil {
			return nil, err
		}
		return m, nil
	},
}

type valueMerger = pebble.ValueMerger

// countValue is one decoded count operand.
type countValue struct {
	n     int64
	d     result.Digest
	valid bool
}

// beats reports whether v replaces w at a full tie-break: larger count, then
// known digest over unknown; equal operands do not replace.
func (v countValue) beats(w countValue) bool {
	if !w.valid {
		return v.valid
	}
	if !v.valid {
		return false
	}
	return v.n > w.n || (v.n == w.n && v.d.Known && !w.d.Known)
}

// countMerger keeps the best operand's bytes, in buf when they fit (any
// valid value does): Pebble calls the merger for every count key a flush or
// compaction meets, mostly with a single operand, so a copy per operand on
// the heap was most of its cost.
type countMerger struct {
	best countValue
	raw  []byte // the best operand's bytes
	set  bool
	buf  [32]byte
}

// keep makes c, read from v (which Pebble may reuse after the call), the
// best operand.
func (m *countMerger) keep(c countValue, v []byte) {
	if len(v) <= len(m.buf) {
		m.raw = append(m.buf[:0], v...)
	} else {
		m.raw = append([]byte(nil), v...)
	}
	m.best, m.set = c, true
}

func decodeCountOperand(v []byte) countValue {
	n, d, ok := decodeCountValue(v)
	return countValue{n: n, d: d, valid: ok}
}

// MergeNewer: a newer operand wins only when strictly better (ties keep the
// oldest, as the read-modify-write kept the stored row).
func (m *countMerger) MergeNewer(v []byte) error {
	if c := decodeCountOperand(v); !m.set || c.beats(m.best) {
		m.keep(c, v)
	}
	return nil
}

// MergeOlder: an older operand wins unless the newer is strictly better.
func (m *countMerger) MergeOlder(v []byte) error {
	if c := decodeCountOperand(v); !m.best.beats(c) {
		m.keep(c, v)
	}
	return nil
}

func (m *countMerger) Finish(bool) ([]byte, io.Closer, error) { return m.raw, nil, nil }

// topMerger keeps each ad's largest count across the operands and the
// longest operand's length; the ranking is done once, in Finish.
type topMerger struct {
	by     map[string]int64
	n      int
	broken [][]byte // corrupt operands, newest last: used only if nothing decodes
}

func (m *topMerger) add(v []byte) {
	ads, err := store.DecodeTopAds(v)
	if err != nil {
		m.broken = append(m.broken, append([]byte(nil), v...))
		return
	}
	if m.by == nil {
		m.by = make(map[string]int64, len(ads))
	}
	m.n = max(m.n, len(ads))
	for _, a := range ads {
		if c, ok := m.by[a.AdID]; !ok || a.Count > c {
			m.by[a.AdID] = a.Count
		}
	}
}

func (m *topMerger) MergeNewer(v []byte) error { m.add(v); return nil }
func (m *topMerger) MergeOlder(v []byte) error { m.add(v); return nil }

func (m *topMerger) Finish(bool) ([]byte, io.Closer, error) {
	if m.by == nil && m.n == 0 && len(m.broken) > 0 {
		return m.broken[len(m.broken)-1], nil, nil
	}
	return store.AppendTopAds(nil, store.TopOf(m.by, m.n)), nil, nil
}

// newestMerger is last-writer-wins for keys that are only ever Set.
type newestMerger struct{ v []byte }

func (m *newestMerger) MergeNewer(v []byte) error {
	m.v = append(m.v[:0], v...)
	return nil
}

func (m *newestMerger) MergeOlder(v []byte) error {
	if m.v == nil {
		m.v = append([]byte(nil), v...)
	}
	return nil
}

func (m *newestMerger) Finish(bool) ([]byte, io.Closer, error) { return m.v, nil, nil }
