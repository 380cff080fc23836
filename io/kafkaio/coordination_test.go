package kafkaio

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/twmb/franz-go/pkg/kadm"
)

// registered reports whether any process-wide registry holds an entry of a
// read of topic, and how many gates have reported progress.
func registered(topic string) (reads bool, gates int) {
	readRegistry.Lock()
	for id := range readRegistry.m {
		if strings.HasPrefix(id, topic+"/") {
			reads = true
		}
	}
	readRegistry.Unlock()
	gateRegistry.Lock()
	gates = len(gateRegistry.m)
	gateRegistry.Unlock()
	return reads, gates
}

// TestCheckpointedSharesNothing: with Checkpointed coordination (a runner
// with many worker processes) a read — discovery, every bundle, the
// watermark reports and the commits — never touches process-wide state, and
// still reads everything and commits. The same read InProcess does register
// (so the check can fail), and a gate is refused.
func TestCheckpointedSharesNothing(t *testing.T) {
	brokers := backends()[0].brokers(t) // kfake: the property is the reader's, not the broker's
	for _, mode := range []Coordination{Checkpointed, InProcess} {
		t.Run(string(mode), func(t *testing.T) {
			topic := newTopic(t, brokers, 3)
			group := topic + "-g"
			var recs []rec
			var want []string
			base := time.Now().Add(-time.Hour).UnixMilli()
			for i := range 1800 {
				v := fmt.Sprintf("%d|r%d", base+int64(i)*1000, i)
				recs = append(recs, rec{partition: int32(i % 3), ts: base + int64(i)*1000, value: v})
				want = append(want, v)
			}
			produce(t, brokers, topic, recs)
			_, gatesBefore := registered(topic)
			p, s := beam.NewPipelineWithRoot()
			lines := Read(s, ReadConfig{Brokers: brokers, Topic: topic, Group: group, EndOffsets: true, Coordination: mode,
				CommitDelay: time.Millisecond, CommitInterval: time.Millisecond, CheckpointAfter: 50, MaxPollRecords: 20})
			passert.EqualsList(s, beam.ParDo(s, flattenLines, lines), want)
			if err := ptest.Run(p); err != nil {
				t.Fatal(err)
			}
			reads, gates := registered(topic)
			if mode == Checkpointed && (reads || gates != gatesBefore) {
				t.Errorf("a Checkpointed read used process-wide state: read registered %v, gates %d → %d", reads, gatesBefore, gates)
			}
			if mode == InProcess && !reads {
				t.Error("an InProcess read did not register its shared watermark: the check above proves nothing")
			}
			if mode != Checkpointed {
				return
			}
			// Commits still report progress (how far depends on timing: that one
			// exists is what this checks).
			offs, err := newAdmin(t, brokers).FetchOffsets(t.Context(), group)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			offs.Each(func(o kadm.OffsetResponse) {
				if o.Topic == topic && o.Err == nil && o.At >= 0 {
					n++
				}
			})
			if n == 0 {
				t.Error("a Checkpointed read committed no offset: commits must still report progress")
			}
		})
	}
	cfg := ReadConfig{Brokers: brokers, Topic: "t", Coordination: Checkpointed, Gate: NewGate(1)}
	if err := cfg.Validate(); err == nil {
		t.Error("a gate with Checkpointed coordination was accepted")
	}
	cfg = ReadConfig{Brokers: brokers, Topic: "t", Coordination: "flink"}
	if err := cfg.Validate(); err == nil {
		t.Error("an unknown coordination was accepted")
	}
}
