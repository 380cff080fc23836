package kafkaio

import (
	"encoding/binary"
	"fmt"
	"math"
)

// unboundedEnd is the End of a restriction that reads a partition for ever.
const unboundedEnd = math.MaxInt64

// Restriction is a range of offsets [Start, End) of one partition. End is
// math.MaxInt64 for an unbounded read.
type Restriction struct {
	Start, End int64
}

func encodeRestriction(r Restriction) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b, uint64(r.Start))
	binary.BigEndian.PutUint64(b[8:], uint64(r.End))
	return b
}

func decodeRestriction(b []byte) (Restriction, error) {
	if len(b) != 16 {
		return Restriction{}, fmt.Errorf("kafkaio: restriction is %d bytes, want 16", len(b))
	}
	return Restriction{Start: int64(binary.BigEndian.Uint64(b)), End: int64(binary.BigEndian.Uint64(b[8:]))}, nil
}

// tracker claims offsets of a Restriction. Offsets may have gaps (a claim may
// skip ahead), and a claim at or past End ends the restriction, which is how a
// bounded read finishes even if the last offsets hold no records.
//
// It splits only when the reader asked for a checkpoint: the runner's own
// split requests are refused, because a partition is read by exactly one
// restriction at a time and the estimator state must describe exactly the
// residual's start.
type tracker struct {
	rest       Restriction
	claimed    int64 // last claimed offset; Start-1 before any claim
	stopped    bool
	checkpoint bool // set by the reader just before it returns ResumeProcessingIn
	err        error
	lag        int64 // records known to wait past the claimed offset (progress only)
}

func newTracker(r Restriction) *tracker {
	return &tracker{rest: r, claimed: r.Start - 1}
}

// TryClaim claims every offset up to pos (an int64).
func (t *tracker) TryClaim(p any) bool {
	if t.stopped || t.err != nil {
		return false
	}
	pos, ok := p.(int64)
	if !ok {
		t.err = fmt.Errorf("kafkaio: claim of %T, want int64", p)
		return false
	}
	if pos <= t.claimed {
		t.err = fmt.Errorf("kafkaio: claim of offset %d at or before the last claim %d", pos, t.claimed)
		return false
	}
	if pos >= t.rest.End {
		t.stopped = true
		return false
	}
	t.claimed = pos
	return true
}

func (t *tracker) GetError() error { return t.err }

func (t *tracker) TrySplit(fraction float64) (primary, residual any, err error) {
	if t.stopped || t.err != nil || fraction != 0 || !t.checkpoint {
		return t.rest, nil, nil
	}
	next := t.claimed + 1
	if next >= t.rest.End {
		t.stopped = true
		return t.rest, nil, nil
	}
	res := Restriction{Start: next, End: t.rest.End}
	t.rest.End = next
	t.stopped = true
	return t.rest, res, nil
}

func (t *tracker) GetProgress() (done, remaining float64) {
	done = float64(t.claimed + 1 - t.rest.Start)
	if t.rest.End == unboundedEnd {
		return done, float64(t.lag) + 1
	}
	return done, float64(t.rest.End - t.claimed - 1)
}

func (t *tracker) IsDone() bool {
	return t.err == nil && (t.stopped || t.claimed >= t.rest.End-1)
}

func (t *tracker) GetRestriction() any { return t.rest }

// IsBounded tells the SDK whether draining must truncate the restriction.
func (t *tracker) IsBounded() bool { return t.rest.End != unboundedEnd }
