package pipelines

import (
	"time"

	"github.com/adclick/adclick/domain/result"
)

// compare builds a Check from the two sides: a key mismatches when its
// counts differ, or when they agree and both digests are known and differ —
// the same number of clicks, but not the same clicks, which a count-only
// comparison cannot see. A stored key without a digest is compared by count.
func compare(recounted, stored map[countKey]countVal) Check {
	c := Check{Mismatches: []Mismatch{}, AffectedMinutes: []MinuteRange{}}
	visit := func(k countKey) {
		r, s := recounted[k], stored[k]
		_, isStored := stored[k]
		t := &c.Counts
		if k.filter != "" {
			t = &c.Filtered
		}
		t.Keys++
		t.Recounted += r.n
		t.Stored += s.n
		if isStored && !s.d.Known {
			t.DigestUnknown++
		}
		digestDiffers := r.n == s.n && r.d.Known && s.d.Known && r.d != s.d
		if r.n == s.n && !digestDiffers {
			return
		}
		t.Mismatched++
		t.AbsDifference += abs(r.n - s.n)
		if digestDiffers {
			t.DigestMismatched++
		}
		c.Mismatches = append(c.Mismatches, Mismatch{AdID: k.ad, FilterID: k.filter,
			Minute: time.Unix(k.minute, 0).UTC(), Recounted: r.n, Stored: s.n, Difference: r.n - s.n,
			DigestMismatch: digestDiffers, RecountedDigest: hexOf(r.d), StoredDigest: hexOf(s.d)})
	}
	for k := range recounted {
		visit(k)
	}
	for k := range stored {
		if _, ok := recounted[k]; !ok {
			visit(k)
		}
	}
	finish(&c)
	return c
}

// hexOf is a known digest's hex form, "" for an unknown one.
func hexOf(d result.Digest) string {
	if !d.Known {
		return ""
	}
	return d.String()
}
