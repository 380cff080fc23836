package kafkaio

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/twmb/franz-go/pkg/kadm"
)

func init() {
	register.DoFn2x0[string, func(string)](&slowOnceFn{})
}

// slowOnceFn stalls its first element by Delay: a results path slower than
// the commit delay.
type slowOnceFn struct {
	Delay time.Duration
	slept bool
}

func (f *slowOnceFn) ProcessElement(s string, emit func(string)) {
	if !f.slept {
		f.slept = true
		time.Sleep(f.Delay)
	}
	emit(s)
}

// TestGateHoldsCommitsUntilWritten: partition 0 holds a minute that the idle
// rule closes a second after it was read, and the path to the gated writer
// stalls for 5 s. The commit that closes that minute (offset 100) must not
// come before the writer has written all of its records — with a fixed
// commit delay of 1 ms it would.
func TestGateHoldsCommitsUntilWritten(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			brokers := be.brokers(t)
			in, out := newTopic(t, brokers, 2), newTopic(t, brokers, 1)
			group := in + "-g"
			old := time.Now().UnixMilli() - 30*60_000
			var recs []rec
			for i := range 100 {
				recs = append(recs, rec{0, old + int64(i), fmt.Sprintf("%d|old%d", old+int64(i), i)})
			}
			produce(t, brokers, in, recs)
			gate := NewGate(1)
			cfg := ReadConfig{Brokers: brokers, Topic: in, Group: group,
				IdleTimeout: time.Second, MaxSkew: time.Second, WatermarkDelay: time.Second,
				AllowedLateness: time.Minute, Margin: time.Second,
				CommitDelay: time.Millisecond, CommitInterval: 100 * time.Millisecond, Gate: gate}

			p, s := beam.NewPipelineWithRoot()
			// The reshuffle puts the stall in its own stage: the reader goes on
			// reading, idling and committing meanwhile.
			lines := beam.Reshuffle(s, beam.ParDo(s, flattenLines, Read(s, cfg)))
			lines = beam.ParDo(s, &slowOnceFn{Delay: 5 * time.Second}, lines)
			WriteKVGated(s, WriteConfig{Brokers: brokers, Topic: out}, beam.ParDo(s, keyByLine, lines), gate, "out")
			run := runStreaming(t, p)

			adm := newAdmin(t, brokers)
			waitCommitted(t, adm, group, in, run, func(got kadm.OffsetResponses) bool {
				o, ok := got.Lookup(in, 0)
				return ok && o.At == 100 // the minute's commit; never coming means the gate does not open
			})
			// The commit is there: everything it closes must be written.
			ends, err := adm.ListEndOffsets(context.Background(), out)
			if err != nil {
				t.Fatal(err)
			}
			var n int64
			ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
			if n != 100 {
				t.Fatalf("offset 100 committed while the writer had written %d of the minute's 100 records", n)
			}
			vals := consumeUntil(t, brokers, out, 30*time.Second, run, func(v []string) bool { return len(v) >= 100 })
			if len(vals) != 100 || !strings.Contains(strings.Join(vals, ","), "old99") {
				t.Fatalf("written: %d records %v", len(vals), head(vals))
			}
		})
	}
}
