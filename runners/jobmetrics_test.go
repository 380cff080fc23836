package runners

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
)

// held blocks the second stage of the test pipeline until the test has seen
// the first stage's metrics (the loopback worker runs in this process).
var held = make(chan struct{})

var (
	testCounter = beam.NewCounter("test", "seen")
	testGauge   = beam.NewGauge("test", "last")
)

func countStage(ctx context.Context, x int, emit func(int, int)) {
	testCounter.Inc(ctx, 1)
	testGauge.Set(ctx, 42)
	emit(x%2, x)
}

func holdStage(k int, _ func(*int) bool) { <-held }

func init() {
	register.Function3x0(countStage)
	register.Function2x0(holdStage)
	register.Emitter2[int, int]()
	register.Iter1[int]()
}

// TestJobMetricsWhileRunning reads a job's counters from prism's job service
// while the job is still running (its second stage waits for the test), and
// keeps the final values after it ended.
func TestJobMetricsWhileRunning(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	kv := beam.ParDo(s, countStage, beam.Create(s, 1, 2, 3, 4, 5, 6, 7))
	beam.ParDo0(s.Scope("hold"), holdStage, beam.GroupByKey(s, kv))

	jm := &JobMetrics{Interval: 50 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := Run(ctx, p, Options{Runner: Prism, Metrics: jm})
		errc <- err
	}()
	deadline := time.Now().Add(90 * time.Second)
	for {
		snap := jm.Snapshot()
		if snap.Counter("test", "seen") == 7 {
			if snap.Running != 1 {
				t.Errorf("while the job waits, %d jobs are running, want 1", snap.Running)
			}
			if g := snap.Gauges[MetricName{"test", "last"}]; g.Value != 42 || g.At.IsZero() {
				t.Errorf("gauge %+v, want 42 with a time", g)
			}
			if snap.At.IsZero() || time.Since(snap.At) > time.Minute {
				t.Errorf("snapshot time %v", snap.At)
			}
			break
		}
		if time.Now().After(deadline) {
			close(held)
			t.Fatalf("the running job's counter never reached 7: %+v", snap)
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(held)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	snap := jm.Snapshot()
	if snap.Counter("test", "seen") != 7 || snap.Running != 0 {
		t.Errorf("after the job: counter %d, running %d; want 7, 0", snap.Counter("test", "seen"), snap.Running)
	}
	var created int64
	for name, n := range snap.Elements {
		if strings.HasSuffix(name, "countStage") {
			created += n
		}
	}
	if created != 7 {
		t.Errorf("elements out of countStage: %d, want 7 (all: %v)", created, snap.Elements)
	}
}

// TestDecodeMetrics: committed values win over attempted ones; element
// counts are attributed to the primitive transform producing the
// PCollection, not to its composites.
func TestDecodeMetrics(t *testing.T) {
	sum := func(ns, name string, n byte) *pipepb.MonitoringInfo {
		return &pipepb.MonitoringInfo{Urn: urnUserCounter, Labels: map[string]string{"NAMESPACE": ns, "NAME": name, "PTRANSFORM": "e1"}, Payload: []byte{n}}
	}
	res := &jobpb.MetricResults{
		Attempted: []*pipepb.MonitoringInfo{sum("a", "x", 100)},
		Committed: []*pipepb.MonitoringInfo{
			sum("a", "x", 3), sum("a", "x", 4),
			{Urn: urnUserGauge, Labels: map[string]string{"NAMESPACE": "a", "NAME": "g"}, Payload: []byte{10, 5}},
			{Urn: urnElementCount, Labels: map[string]string{"PCOLLECTION": "n1"}, Payload: []byte{9}},
		},
	}
	pl := &pipepb.Pipeline{Components: &pipepb.Components{Transforms: map[string]*pipepb.PTransform{
		"outer": {UniqueName: "outer", Subtransforms: []string{"inner"}, Outputs: map[string]string{"o": "n1"}},
		"inner": {UniqueName: "outer/inner", Outputs: map[string]string{"o": "n1"}},
	}}}
	v := decodeMetrics(res, producers(pl))
	if v.counters[MetricName{"a", "x"}] != 7 {
		t.Errorf("counter %d, want 7 (committed, summed over transforms)", v.counters[MetricName{"a", "x"}])
	}
	if g := v.gauges[MetricName{"a", "g"}]; g.Value != 5 || g.At.UnixMilli() != 10 {
		t.Errorf("gauge %+v", g)
	}
	if v.elements["outer/inner"] != 9 || len(v.elements) != 1 {
		t.Errorf("elements %v", v.elements)
	}
	v = decodeMetrics(&jobpb.MetricResults{Attempted: []*pipepb.MonitoringInfo{sum("a", "x", 100)}}, nil)
	if v.counters[MetricName{"a", "x"}] != 100 {
		t.Errorf("without committed values: %v", v.counters)
	}
}
