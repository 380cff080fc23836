package explain

import (
	"cmp"
	"slices"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
)

// Status tells the rows of a listing apart (the export's status column).
type Status string

// The statuses of a click row.
const (
	Counted    Status = "counted"
	NotCounted Status = "not_counted"
)

// Reasons a raw click was not counted.
const (
	// ReasonTooLateInferred: a live minute's stored digest shows the
	// streaming job left the click out; it had arrived too late (toolate.go).
	ReasonTooLateInferred = "not counted in real time (too late)"
	// ReasonTooLateRecorded: the TooLateSource recorded the decision.
	ReasonTooLateRecorded = "too late (recorded)"
)

// Row is one raw click of the range and what the rules made of it.
type Row struct {
	Click  click.Click
	Status Status
	Reason string // empty when counted
	hash   result.Digest
}

// judged is one (ad, minute) after the batch rules: its rows, counted ones
// first, each part in (event time, event id) order so that a listing and its
// page positions are stable.
type judged struct {
	rows    []Row
	counted int // rows[:counted] are counted
}

// copyLess orders the copies of one event id: the smallest (country,
// device, ad_format) in byte order wins (docs/spec.md §2: across reads the
// result must not depend on arrival order); among equal ones the earliest.
func copyLess(a, b *click.Click) int {
	if c := cmp.Compare(a.Country, b.Country); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Device, b.Device); c != 0 {
		return c
	}
	if c := cmp.Compare(a.AdFormat, b.AdFormat); c != 0 {
		return c
	}
	return cmp.Compare(a.Time, b.Time)
}

// judge applies the batch rules to the raw clicks of one ad and minute:
// one click per event id, decided by its winning copy; with a filter, the
// click counts when the winning copy matches it, and only event ids with a
// copy in the filter are listed.
func judge(clicks []click.Click, f filter) judged {
	slices.SortFunc(clicks, func(a, b click.Click) int {
		if c := cmp.Compare(a.EventID, b.EventID); c != 0 {
			return c
		}
		return copyLess(&a, &b)
	})
	var j judged
	var dropped []Row
	for i := 0; i < len(clicks); {
		k := i + 1
		for k < len(clicks) && clicks[k].EventID == clicks[i].EventID {
			k++
		}
		win := &clicks[i] // the group is sorted: its first copy wins
		h := result.EventDigest(win.EventID)
		inFilter := f.matches(win)
		if inFilter {
			j.rows = append(j.rows, Row{Click: *win, Status: Counted, hash: h})
		}
		for x := i + 1; x < k; x++ {
			if c := &clicks[x]; f.matches(c) {
				dropped = append(dropped, Row{Click: *c, Status: NotCounted, Reason: duplicateReason(win, inFilter, f), hash: h})
			}
		}
		i = k
	}
	j.counted = len(j.rows)
	sortRows(j.rows)
	sortRows(dropped)
	j.rows = append(j.rows, dropped...)
	return j
}

// duplicateReason names the counted copy; when that copy's attributes put
// the click outside the filter, says so, as the copy listed matched it.
func duplicateReason(win *click.Click, inFilter bool, f filter) string {
	r := "duplicate of " + win.EventID
	if !inFilter {
		r += " (the copy that decides the filters is outside " + f.id + ")"
	}
	return r
}

func sortRows(rows []Row) {
	slices.SortFunc(rows, func(a, b Row) int {
		if c := cmp.Compare(a.Click.Time, b.Click.Time); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Click.EventID, b.Click.EventID); c != 0 {
			return c
		}
		return copyLess(&a.Click, &b.Click)
	})
}

// tally is the count and digest of the counted rows.
func (j *judged) tally() (int64, result.Digest) {
	d := result.Digest{Known: true}
	for i := range j.rows[:j.counted] {
		d = d.Add(j.rows[i].hash)
	}
	return int64(j.counted), d
}

// uncount moves the counted rows at the given indexes (into rows[:counted])
// to the not-counted part with the reason, and every not-counted copy of
// their event ids gets the reason too: the too-late check runs before
// deduplication (docs/spec.md §2), so no copy of such a click counted.
func (j *judged) uncount(idx []int, reason string) {
	gone := make(map[string]bool, len(idx))
	for _, i := range idx {
		gone[j.rows[i].Click.EventID] = true
	}
	var kept, moved []Row
	for i, r := range j.rows {
		if gone[r.Click.EventID] {
			r.Status, r.Reason = NotCounted, reason
			moved = append(moved, r)
			continue
		}
		if i >= j.counted {
			moved = append(moved, r)
			continue
		}
		kept = append(kept, r)
	}
	sortRows(moved)
	j.counted = len(kept)
	j.rows = append(kept, moved...)
}
