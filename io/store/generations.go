package store

import (
	"fmt"
	"sort"
	"unicode/utf8"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
)

// GenRange is one recalculation generation: the minutes it was reserved for
// and, once committed, its commit sequence number (Seq > 0). Backends persist
// these records; Serving turns the committed ones into the maps reads consult.
//
// Counts and top lists have separate ranges because a top list depends on
// more minutes than its own: the list of a W-minute window ending at minute m
// sums the minutes (m − W, m]. A recalculation of the minutes [From, To)
// therefore changes the counts of [From, To) but the top lists of every
// window end in [From, To + longest window − 1 min): TopTo. The counts after
// To are not recalculated and stay with the generation serving them (the
// streaming job's, typically, which may still be writing them).
type GenRange struct {
	Gen      Generation
	From, To int64 // counts and filtered counts of [From, To); Unix seconds, minute-aligned
	// TopTo ends the range of window ends [From, TopTo) whose top lists the
	// generation serves; minute-aligned. 0 (and any value below To) means To:
	// records written before top lists had their own range.
	TopTo int64
	// Seq is 0 while reserved, the commit order once committed (> 0), and
	// Abandoned once a collection gave up on the reservation.
	Seq int64
	// Reserved and CommittedAt are wall-clock times (Unix microseconds) of
	// the reservation and the commit; 0 in records written before they were
	// kept. Garbage collection waits its grace period from CommittedAt.
	Reserved, CommittedAt int64
	// Collected: a collection has deleted the rows this generation's
	// commit superseded (or, abandoned, all of its rows).
	Collected bool
}

// Abandoned is the Seq of a generation that was reserved and never committed
// within the collection's limit: it can no longer be committed.
const Abandoned int64 = -1

// Committed reports whether the generation serves reads.
func (g GenRange) Committed() bool { return g.Seq > 0 }

// TopEnd is the end of the window ends whose top lists g serves.
func (g GenRange) TopEnd() int64 { return max(g.To, g.TopTo) }

// Segment is a run of minutes [From, To) served by one generation.
type Segment struct {
	From, To int64
	Gen      Generation
}

// Serving says which generation serves each minute's counts: the most
// recently committed generation whose range covers it, or LiveGeneration
// where none does; Tops says the same for top lists by window end. It is
// immutable; backends build a new one on every commit and swap it in
// atomically, so a read that takes one Serving sees one consistent choice for
// its whole range (never a mix of old and new), and one commit switches a
// generation's counts and top lists together.
type Serving struct {
	segs []Segment // sorted, disjoint, non-live generations only
	tops *Serving  // the top lists' map; nil in that map itself
}

// NewServing builds the serving maps from generation records (uncommitted
// ones are ignored). Later commits (higher Seq) win where ranges overlap.
func NewServing(gens []GenRange) *Serving {
	committed := make([]GenRange, 0, len(gens))
	for _, g := range gens {
		if g.Committed() && g.From < g.To {
			committed = append(committed, g)
		}
	}
	sort.Slice(committed, func(i, j int) bool { return committed[i].Seq < committed[j].Seq })
	var segs, tops []Segment
	for _, g := range committed {
		segs = overlay(segs, Segment{From: g.From, To: g.To, Gen: g.Gen})
		tops = overlay(tops, Segment{From: g.From, To: g.TopEnd(), Gen: g.Gen})
	}
	return &Serving{segs: segs, tops: &Serving{segs: tops}}
}

// Tops is the serving map of top lists, by window end. Count and ScanCounts
// consult s itself; Top and LatestTopMinute consult s.Tops().
func (s *Serving) Tops() *Serving {
	if s.tops == nil {
		return s
	}
	return s.tops
}

// overlay lays s over the sorted disjoint segs, cutting what it covers.
func overlay(segs []Segment, s Segment) []Segment {
	out := make([]Segment, 0, len(segs)+2)
	placed := false
	for _, x := range segs {
		if x.To <= s.From || x.From >= s.To { // disjoint
			if !placed && x.From >= s.To {
				out = append(out, s)
				placed = true
			}
			out = append(out, x)
			continue
		}
		if x.From < s.From {
			out = append(out, Segment{From: x.From, To: s.From, Gen: x.Gen})
		}
		if !placed {
			out = append(out, s)
			placed = true
		}
		if x.To > s.To {
			out = append(out, Segment{From: s.To, To: x.To, Gen: x.Gen})
		}
	}
	if !placed {
		out = append(out, s)
	}
	return out
}

// Segments splits [from, to) into runs served by one generation each, in
// order, covering the whole range (gaps are LiveGeneration).
func (s *Serving) Segments(from, to int64) []Segment {
	if from >= to {
		return nil
	}
	var out []Segment
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].To > from })
	cur := from
	for ; i < len(s.segs) && s.segs[i].From < to && cur < to; i++ {
		x := s.segs[i]
		if x.From > cur {
			out = append(out, Segment{From: cur, To: x.From, Gen: LiveGeneration})
			cur = x.From
		}
		end := min(x.To, to)
		out = append(out, Segment{From: cur, To: end, Gen: x.Gen})
		cur = end
	}
	if cur < to {
		out = append(out, Segment{From: cur, To: to, Gen: LiveGeneration})
	}
	return out
}

// GenAt returns the generation serving minute m.
func (s *Serving) GenAt(m int64) Generation {
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].To > m })
	if i < len(s.segs) && s.segs[i].From <= m {
		return s.segs[i].Gen
	}
	return LiveGeneration
}

// Generations lists every generation that serves some minute, live included.
func (s *Serving) Generations() []Generation {
	seen := map[Generation]bool{LiveGeneration: true}
	out := []Generation{LiveGeneration}
	for _, x := range s.segs {
		if !seen[x.Gen] {
			seen[x.Gen] = true
			out = append(out, x.Gen)
		}
	}
	return out
}

// Limits of identifiers (docs/spec.md §1: ids are 1–256 bytes).
const MaxIDBytes = 256

// CheckRange validates a minute range for Count and ScanCounts: both ends
// minute-aligned and from <= to. An empty range (from == to) is valid.
func CheckRange(from, to int64) error {
	if from%60 != 0 || to%60 != 0 {
		return fmt.Errorf("%w: range [%d, %d) is not minute-aligned", ErrInvalid, from, to)
	}
	if from > to {
		return fmt.Errorf("%w: range [%d, %d) ends before it starts", ErrInvalid, from, to)
	}
	return nil
}

// CheckGenRange validates the ranges of NewGeneration: [from, to) a
// non-empty minute range, topTo minute-aligned and not before to.
func CheckGenRange(from, to, topTo int64) error {
	if err := CheckRange(from, to); err != nil {
		return err
	}
	if from == to {
		return fmt.Errorf("%w: empty generation range", ErrInvalid)
	}
	if topTo%60 != 0 || topTo < to {
		return fmt.Errorf("%w: top lists' range end %d must be a minute at or after %d", ErrInvalid, topTo, to)
	}
	return nil
}

// CheckID validates an ad, event or filter id.
func CheckID(what, id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty %s", ErrInvalid, what)
	}
	if len(id) > MaxIDBytes {
		return fmt.Errorf("%w: %s is %d bytes, limit %d", ErrInvalid, what, len(id), MaxIDBytes)
	}
	if !utf8.ValidString(id) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, what)
	}
	return nil
}

// CheckRecord validates one aggregate record for Upsert.
func CheckRecord(r result.Record) error {
	if r.TooLate != nil {
		return fmt.Errorf("%w: a too-late record is not an aggregate (TooLateStore.AddTooLate stores it)", ErrInvalid)
	}
	n := 0
	if r.Count != nil {
		n++
	}
	if r.Filtered != nil {
		n++
	}
	if r.Top != nil {
		n++
	}
	if n != 1 {
		return fmt.Errorf("%w: a record must set exactly one of Count, Filtered, Top", ErrInvalid)
	}
	switch {
	case r.Count != nil:
		if err := CheckID("ad id", r.Count.AdID); err != nil {
			return err
		}
		return checkMinuteCount(r.Count.Minute, r.Count.Count)
	case r.Filtered != nil:
		if err := CheckID("ad id", r.Filtered.AdID); err != nil {
			return err
		}
		if err := CheckID("filter id", r.Filtered.FilterID); err != nil {
			return err
		}
		return checkMinuteCount(r.Filtered.Minute, r.Filtered.Count)
	default:
		t := r.Top
		if t.WindowSize <= 0 {
			return fmt.Errorf("%w: top window size %d", ErrInvalid, t.WindowSize)
		}
		if t.Minute%60 != 0 {
			return fmt.Errorf("%w: top minute %d is not minute-aligned", ErrInvalid, t.Minute)
		}
		for _, a := range t.Ads {
			if err := CheckID("ad id", a.AdID); err != nil {
				return err
			}
			if a.Count < 0 {
				return fmt.Errorf("%w: negative count for ad %q", ErrInvalid, a.AdID)
			}
		}
	}
	return nil
}

func checkMinuteCount(m, c int64) error {
	if m%60 != 0 {
		return fmt.Errorf("%w: minute %d is not minute-aligned", ErrInvalid, m)
	}
	if c < 0 {
		return fmt.Errorf("%w: negative count %d", ErrInvalid, c)
	}
	return nil
}

// CheckClick validates a click for WriteRaw: ids 1–256 bytes, attributes at
// most 256 bytes, event time within docs/spec.md §1's years 2000–2100.
func CheckClick(c *click.Click) error {
	if err := CheckID("event id", c.EventID); err != nil {
		return err
	}
	if err := CheckID("ad id", c.AdID); err != nil {
		return err
	}
	for _, a := range [...]string{c.UserID, c.IP, c.Country, c.Device, c.AdFormat} {
		if len(a) > MaxIDBytes {
			return fmt.Errorf("%w: click attribute is %d bytes, limit %d", ErrInvalid, len(a), MaxIDBytes)
		}
		if !utf8.ValidString(a) {
			return fmt.Errorf("%w: click attribute is not valid UTF-8", ErrInvalid)
		}
	}
	if c.Time < click.MinTime.UnixMilli() || c.Time >= click.MaxTime.UnixMilli() {
		return fmt.Errorf("%w: event time %d ms is outside years 2000-2100", ErrInvalid, c.Time)
	}
	return nil
}

// SegmentAt returns the non-live segment containing minute m, if any.
func (s *Serving) SegmentAt(m int64) (Segment, bool) {
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].To > m })
	if i < len(s.segs) && s.segs[i].From <= m {
		return s.segs[i], true
	}
	return Segment{}, false
}

// Owned returns the segments a non-live generation serves, in order.
func (s *Serving) Owned(gen Generation) []Segment {
	var out []Segment
	for _, x := range s.segs {
		if x.Gen == gen {
			out = append(out, x)
		}
	}
	return out
}
