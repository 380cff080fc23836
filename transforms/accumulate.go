package transforms

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/state"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/timers"

	"github.com/adclick/adclick/transforms/result"
)

// Streaming panes are discarding at the runner and accumulated here, in keyed
// state: each stage below merges a pane's new values into what the earlier
// panes of its key carried and emits the accumulated value.
//
// Why not accumulating panes at the runner: prism keeps an accumulating
// aggregation's elements pending until its window expires, which holds the
// stage's output watermark there, and it schedules a stage's consumers only
// when that watermark moves — so everything after the first aggregation
// waited for window expiry and top-N lists never appeared in time.
//
// Why the state lives in the global window, keyed by what it accumulates
// (an (ad, minute), a minute, a sliding window's end), with an event-time
// timer that clears it: prism expires a stateful stage's per-window state at
// the window's end, ignoring allowed lateness, so late panes found it gone.
// The timer fires at the end of what the state stands for plus the runner's
// allowed lateness — exactly when the runner stops accepting late data for
// it — so state stays bounded by the same horizon.
//
// Cost: one state read and write per pane and key, never per click.

// mergeSetFn is mergeFn without the final count: a pane's partials of one
// (ad, minute) merged into one id set, for accumulatePartialFn.
type mergeSetFn struct{}

func (mergeSetFn) CreateAccumulator() Partial             { return Partial{} }
func (mergeSetFn) AddInput(a, in Partial) Partial         { return mergePartials(a, in) }
func (mergeSetFn) MergeAccumulators(a, b Partial) Partial { return mergePartials(a, b) }
func (mergeSetFn) ExtractOutput(a Partial) Partial        { return a }

// expiry sets the timer that clears a key's state: end (Unix ms) is the end
// of the window the key stands for.
func expiry(tp timers.Provider, t timers.EventTime, endMS, latenessMS int64) {
	t.Set(tp, time.UnixMilli(endMS+latenessMS))
}

// accumulatePartialFn unions a pane's id set of one (ad, minute) with the
// earlier panes' and emits the exact count so far.
type accumulatePartialFn struct {
	LatenessMS int64 // the runner's allowed lateness
	IDs        state.Value[Partial]
	Expiry     timers.EventTime
}

func newAccumulatePartialFn(lateness time.Duration) *accumulatePartialFn {
	return &accumulatePartialFn{LatenessMS: lateness.Milliseconds(),
		IDs: state.MakeValueState[Partial]("ids"), Expiry: timers.InEventTime("expiry")}
}

func (f *accumulatePartialFn) ProcessElement(sp state.Provider, tp timers.Provider, key string, p Partial, emit func(string, AdMinute)) error {
	acc, ok, err := f.IDs.Read(sp)
	if err != nil {
		return fmt.Errorf("transforms: reading the ids of %s: %w", key, err)
	}
	if ok {
		p = mergePartials(acc, p)
	} else if minute, _, kok := splitAdMinuteKey(key); kok {
		expiry(tp, f.Expiry, (minute+60)*1000, f.LatenessMS)
	}
	if err := f.IDs.Write(sp, p); err != nil {
		return fmt.Errorf("transforms: writing the ids of %s: %w", key, err)
	}
	emit(key, p.counts())
	return nil
}

func (f *accumulatePartialFn) OnTimer(_ context.Context, sp state.Provider, _ timers.Provider, _ string, _ timers.Context, _ func(string, AdMinute)) error {
	return f.IDs.Clear(sp)
}

// keyByMinuteFn keys a minute's snapshot by its minute, for
// accumulateSnapshotFn.
func keyByMinuteFn(_ string, s MinuteSnapshot) (string, MinuteSnapshot) {
	return strconv.FormatInt(s.Minute, 10), s
}

// accumulateSnapshotFn merges a pane's ad counts of one minute into the
// minute's snapshot so far (the latest, i.e. largest, count per ad) and emits
// the whole snapshot.
type accumulateSnapshotFn struct {
	LatenessMS int64
	Snap       state.Value[MinuteSnapshot]
	Expiry     timers.EventTime
}

func newAccumulateSnapshotFn(lateness time.Duration) *accumulateSnapshotFn {
	return &accumulateSnapshotFn{LatenessMS: lateness.Milliseconds(),
		Snap: state.MakeValueState[MinuteSnapshot]("snapshot"), Expiry: timers.InEventTime("expiry")}
}

func (f *accumulateSnapshotFn) ProcessElement(sp state.Provider, tp timers.Provider, _ string, s MinuteSnapshot, emit func(string, MinuteSnapshot)) error {
	acc, ok, err := f.Snap.Read(sp)
	if err != nil {
		return fmt.Errorf("transforms: reading the snapshot of minute %d: %w", s.Minute, err)
	}
	if ok && acc.Ads != nil {
		maxInto(acc.Ads, s.Ads)
		s = acc
	} else {
		expiry(tp, f.Expiry, (s.Minute+60)*1000, f.LatenessMS)
	}
	if err := f.Snap.Write(sp, s); err != nil {
		return fmt.Errorf("transforms: writing the snapshot of minute %d: %w", s.Minute, err)
	}
	emit("", s)
	return nil
}

func (f *accumulateSnapshotFn) OnTimer(_ context.Context, sp state.Provider, _ timers.Provider, _ string, _ timers.Context, _ func(string, MinuteSnapshot)) error {
	return f.Snap.Clear(sp)
}

// minutesFn is topFn without the final ranking: a pane's minute snapshots of
// one sliding window, for accumulateTopFn.
type minutesFn struct{}

func (minutesFn) CreateAccumulator() Minutes                    { return topFn{}.CreateAccumulator() }
func (minutesFn) AddInput(a Minutes, in MinuteSnapshot) Minutes { return topFn{}.AddInput(a, in) }
func (minutesFn) MergeAccumulators(a, b Minutes) Minutes        { return topFn{}.MergeAccumulators(a, b) }
func (minutesFn) ExtractOutput(a Minutes) Minutes               { return a }

// keyByWindowEndFn keys a sliding window's pane by the window's end (Unix
// ms), for accumulateTopFn.
func keyByWindowEndFn(w beam.Window, _ string, m Minutes, emit func(string, Minutes)) {
	iw, ok := w.(window.IntervalWindow)
	if !ok {
		return // always in sliding windows
	}
	emit(strconv.FormatInt(iw.End.Milliseconds(), 10), m)
}

// accumulateTopFn merges a pane's minute snapshots into the sliding window's
// minutes so far and emits the window's top-N record.
type accumulateTopFn struct {
	N, WindowSize int
	LatenessMS    int64
	Minutes       state.Value[Minutes]
	Expiry        timers.EventTime
}

func newAccumulateTopFn(n, windowSize int, lateness time.Duration) *accumulateTopFn {
	return &accumulateTopFn{N: n, WindowSize: windowSize, LatenessMS: lateness.Milliseconds(),
		Minutes: state.MakeValueState[Minutes]("minutes"), Expiry: timers.InEventTime("expiry")}
}

func (f *accumulateTopFn) ProcessElement(sp state.Provider, tp timers.Provider, key string, m Minutes, emit func(result.Record)) error {
	end, err := strconv.ParseInt(key, 10, 64)
	if err != nil {
		return fmt.Errorf("transforms: bad window key %q: %w", key, err) // keys come from keyByWindowEndFn
	}
	acc, ok, err := f.Minutes.Read(sp)
	if err != nil {
		return fmt.Errorf("transforms: reading the minutes of window %s: %w", key, err)
	}
	if ok {
		m = topFn{}.MergeAccumulators(acc, m)
	} else {
		expiry(tp, f.Expiry, end, f.LatenessMS)
	}
	if err := f.Minutes.Write(sp, m); err != nil {
		return fmt.Errorf("transforms: writing the minutes of window %s: %w", key, err)
	}
	emit(result.Record{Top: &result.Top{WindowSize: f.WindowSize, Minute: end/1000 - 60, Ads: topOfSums(m.M, f.N)}})
	return nil
}

func (f *accumulateTopFn) OnTimer(_ context.Context, sp state.Provider, _ timers.Provider, _ string, _ timers.Context, _ func(result.Record)) error {
	return f.Minutes.Clear(sp)
}
