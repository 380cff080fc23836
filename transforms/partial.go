package transforms

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
)

// clickID is the 128-bit XXH3 hash of an event_id. Partials carry hashes, not
// the ids, to keep the shuffle compact; at 128 bits the chance that two
// distinct ids of one (ad, minute) collide is below k²/2¹²⁹ for k clicks —
// about 10⁻²⁷ for a million clicks of one ad in one minute.
type clickID struct{ Hi, Lo uint64 }

// idOf is result.EventDigest, the one definition the explain reader shares.
func idOf(eventID string) clickID {
	d := result.EventDigest(eventID)
	return clickID{Hi: d.Hi, Lo: d.Lo}
}

// digest is the one-id digest; a set's digest is the sum of its ids'.
func (a clickID) digest() result.Digest { return result.Digest{Hi: a.Hi, Lo: a.Lo, Known: true} }

func (a clickID) compare(b clickID) int {
	if c := cmp.Compare(a.Hi, b.Hi); c != 0 {
		return c
	}
	return cmp.Compare(a.Lo, b.Lo)
}

// attrs are a click's filter attributes; "" means no value.
type attrs struct{ Country, Device, Format string }

func (a attrs) compare(b attrs) int {
	if c := cmp.Compare(a.Country, b.Country); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Device, b.Device); c != 0 {
		return c
	}
	return cmp.Compare(a.Format, b.Format)
}

type entry struct {
	ID   clickID
	Attr uint32 // index into Partial.Attrs
}

// Partial is the set of unique clicks of one (ad, minute) seen so far: the
// accumulator of the per-minute combine. Entries are sorted by ID and unique;
// their attributes are interned in Attrs because an ad's clicks in a minute
// share few distinct (country, device, format) tuples.
//
// Merging is set union, so it is associative, commutative and idempotent:
// merging a partial twice, or in any order, gives the same count. That is what
// makes re-delivered, replayed and duplicated clicks count once.
type Partial struct {
	Entries []entry
	Attrs   []attrs
}

// partialBuilder accumulates one (ad, minute)'s clicks inside a bundle.
type partialBuilder struct {
	entries []entry
	attrs   []attrs
	attrIdx map[attrs]uint32
}

func (b *partialBuilder) add(id clickID, a attrs) {
	b.entries = append(b.entries, entry{ID: id, Attr: b.attrIndex(a)})
}

// attrScan is how many distinct tuples a builder searches linearly before it
// builds a map: most (ad, minute) builders of a bundle hold one to a few
// clicks at high cardinality, and a map each cost an allocation and hashing
// of three strings per click.
const attrScan = 8

// attrIndex interns a in the builder's dictionary.
func (b *partialBuilder) attrIndex(a attrs) uint32 {
	if b.attrIdx == nil {
		for i := range b.attrs {
			if b.attrs[i] == a {
				return uint32(i)
			}
		}
		if len(b.attrs) < attrScan {
			b.attrs = append(b.attrs, a)
			return uint32(len(b.attrs) - 1)
		}
		b.attrIdx = make(map[attrs]uint32, 2*attrScan)
		for i, x := range b.attrs {
			b.attrIdx[x] = uint32(i)
		}
	}
	i, ok := b.attrIdx[a]
	if !ok {
		i = uint32(len(b.attrs))
		b.attrs = append(b.attrs, a)
		b.attrIdx[a] = i
	}
	return i
}

// absorb appends o's clicks to b (o is not used afterwards).
func (b *partialBuilder) absorb(o *partialBuilder) {
	remap := make([]uint32, len(o.attrs))
	for i, a := range o.attrs {
		remap[i] = b.attrIndex(a)
	}
	b.entries = slices.Grow(b.entries, len(o.entries))
	for _, e := range o.entries {
		b.entries = append(b.entries, entry{ID: e.ID, Attr: remap[e.Attr]})
	}
}

// build sorts and deduplicates. Duplicates were already dropped by the
// bundle's seen-set, but build must not rely on that.
func (b *partialBuilder) build() Partial {
	p := Partial{Entries: b.entries, Attrs: b.attrs}
	slices.SortFunc(p.Entries, func(x, y entry) int { return x.ID.compare(y.ID) })
	p.Entries = compactEntries(p.Entries, p.Attrs)
	return p
}

// compactEntries removes repeated IDs from a sorted slice, keeping for each ID
// the entry with the smallest attributes so that the result does not depend
// on arrival order when copies of one event_id disagree on attributes.
func compactEntries(es []entry, as []attrs) []entry {
	if len(es) < 2 {
		return es
	}
	out := es[:1]
	for _, e := range es[1:] {
		last := &out[len(out)-1]
		if e.ID == last.ID {
			if as[e.Attr].compare(as[last.Attr]) < 0 {
				last.Attr = e.Attr
			}
			continue
		}
		out = append(out, e)
	}
	return out
}

// mergePartials returns the union of a and b. It does not modify either.
func mergePartials(a, b Partial) Partial {
	if len(b.Entries) == 0 {
		return a
	}
	if len(a.Entries) == 0 {
		return b
	}
	// Re-intern b's attributes into a copy of a's dictionary.
	out := Partial{Attrs: slices.Clone(a.Attrs)}
	remap := make([]uint32, len(b.Attrs))
	idx := make(map[attrs]uint32, len(out.Attrs)+len(b.Attrs))
	for i, x := range out.Attrs {
		idx[x] = uint32(i)
	}
	for i, x := range b.Attrs {
		j, ok := idx[x]
		if !ok {
			j = uint32(len(out.Attrs))
			out.Attrs = append(out.Attrs, x)
			idx[x] = j
		}
		remap[i] = j
	}
	out.Entries = make([]entry, 0, len(a.Entries)+len(b.Entries))
	i, j := 0, 0
	for i < len(a.Entries) && j < len(b.Entries) {
		ea, eb := a.Entries[i], b.Entries[j]
		eb.Attr = remap[eb.Attr]
		switch c := ea.ID.compare(eb.ID); {
		case c < 0:
			out.Entries = append(out.Entries, ea)
			i++
		case c > 0:
			out.Entries = append(out.Entries, eb)
			j++
		default:
			if out.Attrs[eb.Attr].compare(out.Attrs[ea.Attr]) < 0 {
				ea.Attr = eb.Attr
			}
			out.Entries = append(out.Entries, ea)
			i++
			j++
		}
	}
	out.Entries = append(out.Entries, a.Entries[i:]...)
	for ; j < len(b.Entries); j++ {
		eb := b.Entries[j]
		eb.Attr = remap[eb.Attr]
		out.Entries = append(out.Entries, eb)
	}
	return out
}

// AdMinute is the merged result for one (ad, minute): the unique click count
// and the count per filter id.
type AdMinute struct {
	Count   int64
	Digest  result.Digest
	Filters []FilterCount
}

// FilterCount is one filter id's count.
type FilterCount struct {
	FilterID string
	Count    int64
	Digest   result.Digest
}

// attrSum is the clicks of one attribute tuple: how many, and their digest.
type attrSum struct {
	N      int64
	Digest result.Digest
}

func (s *attrSum) add(id clickID) {
	s.N++
	s.Digest = s.Digest.Add(id.digest())
}

func (s *attrSum) remove(id clickID) {
	s.N--
	s.Digest = s.Digest.Sub(id.digest())
}

// emptyDigest is the digest of the empty set (known, zero).
var emptyDigest = result.Digest{Known: true}

// counts computes the unique count and per-filter counts, with digests.
func (p Partial) counts() AdMinute {
	perAttr := make([]attrSum, len(p.Attrs))
	var d result.Digest
	for _, e := range p.Entries {
		s := &perAttr[e.Attr]
		s.N++
		// Adding the halves inline (carry from Lo) rather than through
		// Digest.Add keeps the recount's per-click cost to two adds.
		s.Digest.Lo, s.Digest.Hi = addID(s.Digest.Lo, s.Digest.Hi, e.ID)
		d.Lo, d.Hi = addID(d.Lo, d.Hi, e.ID)
	}
	d.Known = true
	for i := range perAttr {
		perAttr[i].Digest.Known = true
	}
	return attrCounts(int64(len(p.Entries)), d, perAttr, p.Attrs)
}

// addID adds id to the 128-bit sum (lo, hi) modulo 2^128.
func addID(lo, hi uint64, id clickID) (uint64, uint64) {
	l, c := bits.Add64(lo, id.Lo, 0)
	h, _ := bits.Add64(hi, id.Hi, c)
	return l, h
}

// attrCounts builds an (ad, minute)'s result from its unique count and
// digest and its clicks per attribute tuple (perAttr[i] are those with as[i]).
func attrCounts(total int64, digest result.Digest, perAttr []attrSum, as []attrs) AdMinute {
	if one := soleTuple(perAttr); one >= 0 {
		return oneTupleCounts(total, digest, perAttr[one], as[one])
	}
	byFilter := make(map[string]attrSum)
	put := func(f string, s attrSum) {
		o, ok := byFilter[f]
		if !ok {
			o.Digest = emptyDigest
		}
		byFilter[f] = attrSum{N: o.N + s.N, Digest: o.Digest.Add(s.Digest)}
	}
	for i, s := range perAttr {
		if s.N == 0 {
			continue
		}
		a := as[i]
		if a.Country != "" {
			put(result.FilterID(result.DimCountry, a.Country), s)
		}
		if a.Device != "" {
			put(result.FilterID(result.DimDevice, a.Device), s)
		}
		if a.Format != "" {
			put(result.FilterID(result.DimFormat, a.Format), s)
		}
	}
	out := AdMinute{Count: total, Digest: digest, Filters: make([]FilterCount, 0, len(byFilter))}
	for f, s := range byFilter {
		out.Filters = append(out.Filters, FilterCount{FilterID: f, Count: s.N, Digest: s.Digest})
	}
	slices.SortFunc(out.Filters, func(a, b FilterCount) int { return cmp.Compare(a.FilterID, b.FilterID) })
	return out
}

// soleTuple is the index of the only attribute tuple with clicks, or -1.
func soleTuple(perAttr []attrSum) int {
	one := -1
	for i, s := range perAttr {
		if s.N == 0 {
			continue
		}
		if one >= 0 {
			return -1
		}
		one = i
	}
	return one
}

// oneTupleCounts is attrCounts when every click has the same attributes —
// with millions of ads nearly every (ad, minute): no map, one filter per
// set attribute.
func oneTupleCounts(total int64, digest result.Digest, s attrSum, a attrs) AdMinute {
	out := AdMinute{Count: total, Digest: digest, Filters: make([]FilterCount, 0, 3)}
	add := func(dim, v string) {
		if v != "" {
			out.Filters = append(out.Filters, FilterCount{FilterID: result.FilterID(dim, v), Count: s.N, Digest: emptyDigest.Add(s.Digest)})
		}
	}
	add(result.DimCountry, a.Country)
	add(result.DimDevice, a.Device)
	add(result.DimFormat, a.Format)
	slices.SortFunc(out.Filters, func(a, b FilterCount) int { return cmp.Compare(a.FilterID, b.FilterID) })
	return out
}

func attrsOf(c *click.Click) attrs {
	return attrs{Country: c.Country, Device: c.Device, Format: c.AdFormat}
}

// encodePartial is the Beam coder for Partial: a compact binary form, since
// partials are what crosses the shuffle.
func encodePartial(p Partial) ([]byte, error) {
	return appendPartial(make([]byte, 0, partialSize(p)), p), nil
}

// partialSize bounds the encoded size of p.
func partialSize(p Partial) int {
	n := 2*binary.MaxVarintLen64 + len(p.Entries)*(16+binary.MaxVarintLen32)
	for _, a := range p.Attrs {
		n += 3*binary.MaxVarintLen32 + len(a.Country) + len(a.Device) + len(a.Format)
	}
	return n
}

func appendPartial(b []byte, p Partial) []byte {
	b = binary.AppendUvarint(b, uint64(len(p.Attrs)))
	for _, a := range p.Attrs {
		for _, s := range [...]string{a.Country, a.Device, a.Format} {
			b = binary.AppendUvarint(b, uint64(len(s)))
			b = append(b, s...)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(p.Entries)))
	for _, e := range p.Entries {
		b = binary.BigEndian.AppendUint64(b, e.ID.Hi)
		b = binary.BigEndian.AppendUint64(b, e.ID.Lo)
		b = binary.AppendUvarint(b, uint64(e.Attr))
	}
	return b
}

var errCorrupt = errors.New("transforms: corrupt partial encoding")

func decodePartial(b []byte) (Partial, error) {
	p, rest, err := readPartial(b)
	if err == nil && len(rest) != 0 {
		err = fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(rest))
	}
	return p, err
}

// readPartial decodes one partial from the front of b and returns the rest.
func readPartial(b []byte) (Partial, []byte, error) {
	var p Partial
	na, n := binary.Uvarint(b)
	if n <= 0 || na > uint64(len(b)) {
		return p, nil, errCorrupt
	}
	b = b[n:]
	p.Attrs = make([]attrs, na)
	for i := range p.Attrs {
		var f [3]string
		for k := range f {
			l, n := binary.Uvarint(b)
			if n <= 0 || l > uint64(len(b)-n) {
				return p, nil, errCorrupt
			}
			f[k] = string(b[n : n+int(l)])
			b = b[n+int(l):]
		}
		p.Attrs[i] = attrs{Country: f[0], Device: f[1], Format: f[2]}
	}
	ne, n := binary.Uvarint(b)
	if n <= 0 || ne > uint64(len(b))/17 {
		return p, nil, errCorrupt
	}
	b = b[n:]
	p.Entries = make([]entry, ne)
	for i := range p.Entries {
		if len(b) < 17 {
			return p, nil, errCorrupt
		}
		e := entry{ID: clickID{Hi: binary.BigEndian.Uint64(b), Lo: binary.BigEndian.Uint64(b[8:])}}
		a, n := binary.Uvarint(b[16:])
		if n <= 0 || a >= na {
			return p, nil, fmt.Errorf("%w: attribute index", errCorrupt)
		}
		e.Attr = uint32(a)
		p.Entries[i] = e
		b = b[16+n:]
	}
	return p, b, nil
}
