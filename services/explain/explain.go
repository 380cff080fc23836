package explain

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
)

// Store is what explain reads: one ad's raw clicks, the stored counts with their
// digests and which generation serves each minute. Both backends are one.
type Store interface {
	store.AdRawReader
	store.CountDigester
	store.CountSegmenter
}

// Options say what to explain.
type Options struct {
	Store    Store
	AdID     string
	FilterID string // "" for the ad's count
	From, To int64  // Unix seconds, whole minutes, From < To
	// TooLate is the record of the streaming job's too-late decisions
	// (StoreTooLate); nil: none recorded, see TooLateSource.
	TooLate TooLateSource
}

// Verdict compares a recount with what is stored.
type Verdict string

// Verdicts. Unexplained is a live minute whose difference the digests could
// not attribute to too-late clicks: it may be too-late clicks (more than two)
// or an error; it is never reported as a match.
const (
	Match       Verdict = "match"
	Mismatch    Verdict = "MISMATCH"
	Unexplained Verdict = "unexplained"
)

// MinuteSummary is one minute's recount beside the stored values.
type MinuteSummary struct {
	Minute       int64
	Generation   store.Generation // serving the minute's stored count
	Raw          int              // raw clicks listed (in the filter)
	Count        int64            // recounted
	Digest       result.Digest
	StoredCount  int64
	StoredDigest result.Digest // unknown for rows stored before digests
	TooLate      int           // clicks found not counted in real time
	Verdict      Verdict
}

// Minute is one minute's listing and summary.
type Minute struct {
	Rows    []Row // counted first, then not counted
	Summary MinuteSummary
}

// Explainer explains one ad and range; safe for one caller at a time.
type Explainer struct {
	o   Options
	f   filter
	seg []store.Segment
}

// Validate checks the ad, filter and range (ErrInvalid), not the store.
func (o *Options) Validate() error {
	_, err := o.check()
	return err
}

func (o *Options) check() (filter, error) {
	if err := store.CheckID("ad id", o.AdID); err != nil {
		return filter{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	f, err := parseFilter(o.FilterID)
	if err != nil {
		return filter{}, err
	}
	if o.From%60 != 0 || o.To%60 != 0 || o.From >= o.To {
		return filter{}, fmt.Errorf("%w: range [%d, %d) must be whole minutes with from before to", ErrInvalid, o.From, o.To)
	}
	return f, nil
}

// New validates the options and reads which generation serves each minute.
func New(ctx context.Context, o Options) (*Explainer, error) {
	f, err := o.check()
	if err != nil {
		return nil, err
	}
	if o.Store == nil {
		return nil, errors.New("explain: no store")
	}
	seg, err := o.Store.CountSegments(ctx, o.From, o.To)
	if err != nil {
		return nil, fmt.Errorf("explain: serving generations: %w", err)
	}
	return &Explainer{o: o, f: f, seg: seg}, nil
}

// genAt is the generation serving minute m (the segments cover the range).
func (e *Explainer) genAt(m int64) store.Generation {
	for _, s := range e.seg {
		if s.From <= m && m < s.To {
			return s.Gen
		}
	}
	return store.LiveGeneration
}

// Minute explains minute m of the range.
func (e *Explainer) Minute(ctx context.Context, m int64) (*Minute, error) {
	clicks, err := readAdMinute(ctx, e.o.Store, e.o.AdID, m)
	if err != nil {
		return nil, err
	}
	j := judge(clicks, e.f)
	sn, sd, err := e.o.Store.CountDigest(ctx, e.o.AdID, e.f.id, m, m+60)
	if err != nil {
		return nil, fmt.Errorf("explain: stored count of %s: %w", minuteText(m), err)
	}
	s := MinuteSummary{Minute: m, Generation: e.genAt(m), Raw: len(j.rows), StoredCount: sn, StoredDigest: sd}
	if s.Generation == store.LiveGeneration {
		if err := e.explainLive(ctx, &j, &s); err != nil {
			return nil, err
		}
	}
	s.Count, s.Digest = j.tally()
	s.Verdict = verdict(s)
	return &Minute{Rows: j.rows, Summary: s}, nil
}

// explainLive leaves out of a live minute's recount the clicks the
// streaming job judged too late: the recorded ones, else those the digests
// identify (one or two).
//
// The recorded ones are taken only when the recount then is the stored
// count and digest. A record can name a click that was counted after all:
// a job restarted from an earlier offset re-reads clicks with a fresh
// watermark, and one incarnation may count a click another judged too late
// (the stored count keeps the larger pane). Such a minute is explained as
// if nothing were recorded.
func (e *Explainer) explainLive(ctx context.Context, j *judged, s *MinuteSummary) error {
	if e.o.TooLate != nil {
		hs, err := e.o.TooLate.TooLate(ctx, e.o.AdID, s.Minute)
		if err != nil {
			return fmt.Errorf("explain: too-late record of %s: %w", minuteText(s.Minute), err)
		}
		if len(hs) > 0 {
			trial := *j
			if n := trial.applyRecorded(hs); n > 0 && stored(&trial, s) {
				*j = trial
				s.TooLate += n
				return nil
			}
		}
	}
	if stored(j, s) {
		return nil
	}
	if idx := j.identifyByDigest(s.StoredCount, s.StoredDigest); idx != nil {
		j.uncount(idx, ReasonTooLateInferred)
		s.TooLate += len(idx)
	}
	return nil
}

// stored reports whether j's recount is the stored count and digest (by
// count only where the digest was stored before digests existed).
func stored(j *judged, s *MinuteSummary) bool {
	n, d := j.tally()
	return n == s.StoredCount && (d == s.StoredDigest || !s.StoredDigest.Known)
}

// verdict compares the recount with the stored values (a digest stored
// before digests existed compares by count only).
func verdict(s MinuteSummary) Verdict {
	same := s.Count == s.StoredCount && (!s.StoredDigest.Known || s.Digest == s.StoredDigest)
	switch {
	case same:
		return Match
	case s.Generation == store.LiveGeneration:
		return Unexplained
	default:
		return Mismatch
	}
}

// readAdMinute reads the raw clicks of one ad in [m, m + 60 s).
func readAdMinute(ctx context.Context, st store.AdRawReader, ad string, m int64) ([]click.Click, error) {
	from := time.Unix(m, 0)
	var out []click.Click
	err := st.ReadRawAd(ctx, ad, from, from.Add(time.Minute), func(c click.Click) error {
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("explain: raw clicks of %s: %w", minuteText(m), err)
	}
	return out, nil
}

func minuteText(m int64) string { return time.Unix(m, 0).UTC().Format("2006-01-02T15:04Z") }
