package transforms_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/teststream"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/testing/reference"
	"github.com/adclick/adclick/transforms"
)

// TestStreamingLatenessEdge: a click that passes the too-late check at the
// very edge (the source watermark exactly the minute's end plus the allowed
// lateness) still finds its minute's state after the watermark has sat at
// that edge: a copy of a counted click is a duplicate, a new click counts.
// With no margin after the check (expiry at the edge itself) the state is
// gone and the copy is counted again (stateMargin says why it is a minute).
func TestStreamingLatenessEdge(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	cfg := transforms.DefaultConfig()
	cfg.Streaming = true
	edge := at(time.Minute + cfg.AllowedLateness)

	ts := teststream.NewConfig()
	add := func(wm time.Time, lines ...[]byte) {
		if err := ts.AddElements(ms(wm), click.Lines{Lines: lines, Watermark: ms(wm)}); err != nil {
			t.Fatal(err)
		}
	}
	add(at(0), ev("e1", "ad1", at(10*time.Second), "US"), ev("e2", "ad1", at(20*time.Second), "US"))
	ts.AdvanceProcessingTime(3000)
	if err := ts.AdvanceWatermark(ms(edge)); err != nil {
		t.Fatal(err)
	}
	ts.AdvanceProcessingTime(3000)
	add(edge, ev("e1", "ad1", at(10*time.Second), "US"), ev("e3", "ad1", at(30*time.Second), "US"))
	recs, _ := runTestStream(t, ts, cfg)
	got := reference.Finals(recs, cfg.TopN)
	want := map[string]int64{fmt.Sprint(t0.Unix()) + "/ad1": 3}
	if !reflect.DeepEqual(got.Counts, want) {
		t.Errorf("counts = %v, want %v (e1 once, e2, e3 at the edge)", got.Counts, want)
	}
}
