package store

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"
)

// Lifecycle is what retention and garbage collection need of a backend; both
// backends implement it (docs/storage.md says how it is run and configured).
//
// Raw retention works on whole event-time hours, aggregate retention on whole
// UTC days: those are the units both backends can delete as ranges. Every
// deletion is idempotent and deletes only rows that nothing serves, so a
// collection stopped at any point (a crash, a cancelled context) has lost
// nothing that reads return, and the next one finishes the work.
type Lifecycle interface {
	// Collect runs one collection (see Collection).
	Collect(ctx context.Context, c Collection) (CollectStats, error)
	// RawHorizon is the event time from which the raw store is complete:
	// clicks before it may have been deleted by raw retention. Zero when
	// nothing has been deleted.
	RawHorizon(ctx context.Context) (time.Time, error)
	// Usage says what the store holds, for metrics.
	Usage(ctx context.Context) (Usage, error)
	// Rows counts the aggregate rows (counts, filtered counts, top lists)
	// gen holds for the minutes [from, to) (top lists by window end),
	// exactly: it reads them, for tests and tools.
	Rows(ctx context.Context, gen Generation, from, to int64) (int64, error)
}

// Collection says what one collection deletes. A zero time leaves that part
// out; cutoffs are computed by the caller from its clock and settings.
type Collection struct {
	// RawBefore deletes the raw clicks of every event-time hour that ends at
	// or before it, and makes it the raw horizon: clicks older than it that
	// are written later are not stored.
	RawBefore time.Time
	// AggregatesBefore deletes, in every generation, the counts and
	// filtered counts of every UTC day that ends at or before it, and the
	// top lists whose window ends in such a day.
	AggregatesBefore time.Time
	// SupersededBefore collects the rows that the commits made before it
	// replaced (the rows of older generations in the committed ranges), and
	// the rows a committed generation holds outside its ranges (never
	// served). The grace period is now − SupersededBefore: a reader that
	// took the serving map before a commit may still read the rows it
	// replaced until the reader finishes.
	SupersededBefore time.Time
	// AbandonedBefore abandons every generation reserved before it and
	// still not committed, and deletes its rows. An abandoned generation
	// can never be committed: a replay that outlives this limit fails at
	// its commit instead of serving rows that were partly collected.
	AbandonedBefore time.Time
	// Step, when set, is called after each deletion step (tests use it to
	// stop a collection midway).
	Step func()
}

// CollectStats say what a collection did.
type CollectStats struct {
	Steps       int // deletion steps run
	Generations int // generations whose collection completed (marked collected)
}

// Usage is what a store holds. Figures a backend cannot give cheaply are
// left out; estimated ones say so.
type Usage struct {
	Kinds []KindUsage
	// OldestRaw is the event time of the oldest raw click held (to the
	// minute, or to the hour where the backend knows no better); zero when
	// there is none.
	OldestRaw time.Time
}

// KindUsage is one kind of row — "raw", "counts" (counts and filtered
// counts) or "tops" — of one generation. Gen < 0: the raw store, or every
// generation together where the backend cannot tell them apart. Rows or
// Bytes < 0: not available.
type KindUsage struct {
	Kind      string
	Gen       Generation
	Rows      int64
	Bytes     int64
	Estimated bool // Rows and Bytes are estimates
}

// Kinds of rows in Usage.
const (
	KindRaw    = "raw"
	KindCounts = "counts"
	KindTops   = "tops"
)

// Span is a range [From, To) of minutes (Unix seconds). MinMinute and
// MaxMinute stand for no bound.
type Span struct{ From, To int64 }

// Bounds of a Span that has no bound on one side.
const (
	MinMinute int64 = math.MinInt64
	MaxMinute int64 = math.MaxInt64
)

// AllTime is the span of every minute.
var AllTime = Span{MinMinute, MaxMinute}

// Deletion is gen's rows to delete: counts and filtered counts of the
// minutes in Counts, top lists of the window ends in Tops.
type Deletion struct {
	Gen          Generation
	Counts, Tops []Span
}

// GCStep is one generation's collection: Deletions, then marking Mark
// collected. The mark comes last, so a step cut short is run again.
type GCStep struct {
	Mark      Generation
	Deletions []Deletion
	// Abandoned: the step deletes all of an abandoned generation's rows.
	// A backend runs it only if the abandonment is on record (it loses to
	// a commit that came first).
	Abandoned bool
}

// GCPlan is a collection of superseded and abandoned generations.
type GCPlan struct {
	Abandon []Generation // uncommitted: abandon (durably) before any step
	Steps   []GCStep
}

// PlanGC plans the generation part of a collection from the generation
// records (c.SupersededBefore, c.AbandonedBefore). For each committed,
// not yet collected generation G committed before SupersededBefore: the
// rows of the live generation and of every generation committed before G
// within G's ranges (G serves those minutes now, and has since its commit),
// and G's own rows outside its ranges (never served). For each abandoned one
// (or one to abandon now): all its rows. Records without times (written
// before they were kept) count as old.
func PlanGC(gens []GenRange, c Collection) GCPlan {
	sorted := append([]GenRange(nil), gens...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Gen < sorted[j].Gen })
	var plan GCPlan
	var commits []GenRange
	for _, g := range sorted {
		switch {
		case g.Seq == 0 && !c.AbandonedBefore.IsZero() && g.Reserved < c.AbandonedBefore.UnixMicro():
			plan.Abandon = append(plan.Abandon, g.Gen)
			g.Seq = Abandoned
			fallthrough
		case g.Seq == Abandoned && !g.Collected:
			plan.Steps = append(plan.Steps, GCStep{Mark: g.Gen, Abandoned: true, Deletions: []Deletion{{Gen: g.Gen, Counts: []Span{AllTime}, Tops: []Span{AllTime}}}})
		case g.Committed():
			commits = append(commits, g)
		}
	}
	sort.Slice(commits, func(i, j int) bool { return commits[i].Seq < commits[j].Seq })
	for i, g := range commits {
		if g.Collected || c.SupersededBefore.IsZero() || g.CommittedAt >= c.SupersededBefore.UnixMicro() {
			continue
		}
		counts, tops := Span{g.From, g.To}, Span{g.From, g.TopEnd()}
		st := GCStep{Mark: g.Gen, Deletions: []Deletion{{Gen: LiveGeneration, Counts: []Span{counts}, Tops: []Span{tops}}}}
		for _, older := range commits[:i] {
			st.Deletions = append(st.Deletions, Deletion{Gen: older.Gen, Counts: []Span{counts}, Tops: []Span{tops}})
		}
		st.Deletions = append(st.Deletions, Deletion{Gen: g.Gen,
			Counts: []Span{{MinMinute, g.From}, {g.To, MaxMinute}}, Tops: []Span{{MinMinute, g.From}, {g.TopEnd(), MaxMinute}}})
		plan.Steps = append(plan.Steps, st)
	}
	return plan
}

// ExpiryDeletions are the deletions of aggregate retention: every
// generation's rows of the UTC days before the day of before.
func ExpiryDeletions(gens []Generation, before time.Time) []Deletion {
	day := FloorDay(before.Unix())
	out := make([]Deletion, 0, len(gens))
	for _, g := range gens {
		out = append(out, Deletion{Gen: g, Counts: []Span{{MinMinute, day}}, Tops: []Span{{MinMinute, day}}})
	}
	return out
}

// FloorHour and FloorDay round Unix seconds down to the UTC hour and day.
func FloorHour(s int64) int64 { return floorTo(s, 3600) }

// FloorDay: see FloorHour.
func FloorDay(s int64) int64 { return floorTo(s, 86400) }

func floorTo(s, unit int64) int64 {
	q := s / unit
	if s%unit != 0 && s < 0 {
		q--
	}
	return q * unit
}

// RawHorizonOf is st's raw horizon (Lifecycle.RawHorizon), zero for a
// store without lifecycle.
func RawHorizonOf(ctx context.Context, st Store) (time.Time, error) {
	lc, ok := st.(Lifecycle)
	if !ok {
		return time.Time{}, nil
	}
	return lc.RawHorizon(ctx)
}

// CheckRawRetained refuses work that reads the raw clicks from `from` on
// when raw retention may already have deleted some of them: a recount would
// silently count nothing there. what names the work for the message.
func CheckRawRetained(ctx context.Context, st Store, what string, from time.Time) error {
	h, err := RawHorizonOf(ctx, st)
	if err != nil {
		return fmt.Errorf("reading the raw retention horizon: %w", err)
	}
	if !h.IsZero() && from.Before(h) {
		return fmt.Errorf("%w: %s reads raw clicks from %s, but raw retention has deleted the clicks before %s; recounting would count nothing there. Choose a range that reads nothing older than %s (or keep raw clicks longer: --store-raw-retention)",
			ErrInvalid, what, from.UTC().Format(time.RFC3339), h.UTC().Format(time.RFC3339), h.UTC().Format(time.RFC3339))
	}
	return nil
}
