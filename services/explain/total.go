package explain

import (
	"context"

	"github.com/adclick/adclick/domain/result"
)

// Total sums a range's minute summaries.
type Total struct {
	AdID, FilterID string
	From, To       int64
	Raw            int
	Count          int64
	Digest         result.Digest
	StoredCount    int64
	StoredDigest   result.Digest
	TooLate        int
	Verdict        Verdict // Match only when every minute matches
	Mismatched     []int64 // minutes whose verdict is Mismatch
	Unexplained    []int64 // live minutes whose difference is unexplained
}

func (e *Explainer) newTotal() Total {
	return Total{AdID: e.o.AdID, FilterID: e.f.id, From: e.o.From, To: e.o.To,
		Digest: result.Digest{Known: true}, StoredDigest: result.Digest{Known: true}, Verdict: Match}
}

// add folds one minute in.
func (t *Total) add(s *MinuteSummary) {
	t.Raw += s.Raw
	t.Count += s.Count
	t.Digest = t.Digest.Add(s.Digest)
	t.StoredCount += s.StoredCount
	t.StoredDigest = t.StoredDigest.Add(s.StoredDigest)
	t.TooLate += s.TooLate
	switch s.Verdict {
	case Mismatch:
		t.Mismatched = append(t.Mismatched, s.Minute)
		t.Verdict = Mismatch
	case Unexplained:
		t.Unexplained = append(t.Unexplained, s.Minute)
		t.Verdict = Mismatch
	}
}

// Run explains the range minute by minute, calling fn with each minute
// (fn must not keep it: memory is bounded by one minute), and returns the
// totals.
func (e *Explainer) Run(ctx context.Context, fn func(*Minute) error) (Total, error) {
	return e.RunFrom(ctx, e.o.From, fn)
}

// RunFrom is Run starting at minute start (within the range); the totals
// cover the minutes from start on.
func (e *Explainer) RunFrom(ctx context.Context, start int64, fn func(*Minute) error) (Total, error) {
	t := e.newTotal()
	for m := start; m < e.o.To; m += 60 {
		mm, err := e.Minute(ctx, m)
		if err != nil {
			return t, err
		}
		t.add(&mm.Summary)
		if err := fn(mm); err != nil {
			return t, err
		}
	}
	return t, nil
}

// Totals recounts the whole range for its totals only (the rows of each
// minute are dropped as soon as it is summed).
func (e *Explainer) Totals(ctx context.Context) (Total, error) {
	return e.Run(ctx, func(*Minute) error { return nil })
}
