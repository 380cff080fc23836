package explain

import (
	"context"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
)

// TooLateSource is the streaming job's record of its too-late decisions:
// the event-id hashes (result.EventDigest) of the clicks of one ad and
// minute that the live generation left out as too late (result.TooLate,
// kept by a store.TooLateStore). A nil source means none are recorded, and
// live minutes fall back to identifyByDigest, as do minutes written before
// the job recorded them.
type TooLateSource interface {
	TooLate(ctx context.Context, adID string, minute int64) ([]result.Digest, error)
}

// StoreTooLate is the TooLateSource of st: the live generation's records,
// which only the streaming job writes. Nil when st keeps none.
func StoreTooLate(st any) TooLateSource {
	ts, ok := st.(store.TooLateStore)
	if !ok {
		return nil
	}
	return liveTooLate{ts}
}

type liveTooLate struct{ st store.TooLateStore }

func (l liveTooLate) TooLate(ctx context.Context, adID string, minute int64) ([]result.Digest, error) {
	return l.st.TooLate(ctx, store.LiveGeneration, adID, minute)
}

// maxInferred is the largest difference identifyByDigest resolves: one
// click is a lookup, two a hash-map pass; three would be a quadratic search
// with a real chance of a wrong answer being "found".
const maxInferred = 2

// applyRecorded uncounts the counted rows whose hashes the source recorded.
// It leaves the rows j held before untouched (uncount builds new slices),
// so a caller may try it on a copy of j and drop the copy.
func (j *judged) applyRecorded(hashes []result.Digest) int {
	want := make(map[result.Digest]bool, len(hashes))
	for _, h := range hashes {
		want[h] = true
	}
	var idx []int
	for i := range j.rows[:j.counted] {
		if want[j.rows[i].hash] {
			idx = append(idx, i)
		}
	}
	if len(idx) > 0 {
		j.uncount(idx, ReasonTooLateRecorded)
	}
	return len(idx)
}

// identifyByDigest finds the counted clicks the live generation did not
// count when the recount has one or two more clicks than the stored count:
// their hashes must sum to recounted − stored digest (a set's digest is the
// sum of its ids'). It returns the indexes into rows[:counted], or nil when
// the difference is not that or no such clicks exist.
func (j *judged) identifyByDigest(storedN int64, storedD result.Digest) []int {
	n, d := j.tally()
	k := n - storedN
	if k < 1 || k > maxInferred || !storedD.Known {
		return nil
	}
	missing := d.Sub(storedD)
	counted := j.rows[:j.counted]
	if k == 1 {
		for i := range counted {
			if counted[i].hash == missing {
				return []int{i}
			}
		}
		return nil
	}
	at := make(map[result.Digest]int, len(counted))
	for i := range counted {
		at[counted[i].hash] = i
	}
	for i := range counted {
		if o, ok := at[missing.Sub(counted[i].hash)]; ok && o != i {
			return []int{i, o}
		}
	}
	return nil
}
