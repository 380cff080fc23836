package transforms

import (
	"testing"

	"github.com/adclick/adclick/domain/result"
)

// TestWithoutDigests: the benchmarks' switch leaves every digest out of the
// batch and streaming count records; by default each one has its digest.
func TestWithoutDigests(t *testing.T) {
	var b partialBuilder
	b.add(idOf("e1"), attrs{Country: "US", Device: "ios", Format: "video"})
	b.add(idOf("e2"), attrs{Country: "DE", Device: "web", Format: "banner"})
	p := MinutePartial{Minute: 60, Ads: []string{"ad"}, Parts: []Partial{b.build()}}
	for _, off := range []bool{false, true} {
		var recs []result.Record
		collect := func(r result.Record) { recs = append(recs, r) }
		explodeMinuteFn{NoDigests: off}.ProcessElement(shardKey(60, 0), p, collect, func(string, minuteAds) {})
		acc := newCountAcc(60)
		acc.noDigests = off
		acc.apply(p)
		acc.emit(collect, func(string, MinuteSnapshot) {})
		if len(recs) != 2*7 { // per path: the count and six filtered counts
			t.Fatalf("off=%v: %d records", off, len(recs))
		}
		for _, r := range recs {
			d := result.Digest{}
			if r.Count != nil {
				d = r.Count.Digest
			} else {
				d = r.Filtered.Digest
			}
			if d.Known == off {
				t.Errorf("WithoutDigests=%v: %s has digest known=%v", off, r.AppendJSON(nil), d.Known)
			}
		}
	}
}
