package transforms

import (
	"fmt"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
)

func init() { register.Function2x0(countString) }

func countString(r result.Record, emit func(string)) {
	if r.Count != nil {
		emit(fmt.Sprintf("%d/%s=%d", r.Count.Minute, r.Count.AdID, r.Count.Count))
	}
}

// TestDuplicatesAcrossStagesMerge feeds the same clicks through two separate
// fused stages — two sources, so two sets of bundles that cannot share a
// seen-set — into one aggregation: the copies must merge to one click each.
func TestDuplicatesAcrossStagesMerge(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)
	line := func(id, ad string, d time.Duration) []byte {
		c := click.Click{EventID: id, AdID: ad, Time: t0.Add(d).UnixMilli()}
		return c.AppendJSON(nil)
	}
	a := click.Lines{Watermark: click.NoWatermark, Lines: [][]byte{line("e1", "ad1", time.Second), line("e2", "ad1", 2*time.Second), line("e3", "ad2", 61*time.Second)}}
	b := click.Lines{Watermark: click.NoWatermark, Lines: [][]byte{line("e2", "ad1", 2*time.Second), line("e4", "ad1", 3*time.Second), line("e3", "ad2", 61*time.Second)}}
	p, s := beam.NewPipelineWithRoot()
	fn := &aggregateLinesFn{LatenessMS: 0, MaxClicks: 1 << 20}
	pa := beam.ParDoN(s.Scope("a"), fn, beam.Create(s.Scope("a"), a))[0]
	pb := beam.ParDoN(s.Scope("b"), fn, beam.Create(s.Scope("b"), b))[0]
	cfg := DefaultConfig()
	recs := beam.Flatten(s, aggregatePartials(s, beam.Flatten(s, pa, pb), cfg)...)
	m := t0.Unix()
	passert.Equals(s, beam.ParDo(s, countString, recs),
		fmt.Sprintf("%d/ad1=3", m), fmt.Sprintf("%d/ad2=1", m+60))
	ptest.RunAndValidate(t, p)
}
