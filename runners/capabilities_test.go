package runners_test

import (
	"context"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/sdf"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/state"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/timers"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/rtrackers/offsetrange"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"google.golang.org/protobuf/proto"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/io/kafkaio"
	"github.com/adclick/adclick/io/store/backend"
	"github.com/adclick/adclick/io/storeio"
	"github.com/adclick/adclick/pipelines"
	"github.com/adclick/adclick/runners"
	"github.com/adclick/adclick/transforms"
)

// streamJob builds the streaming job as `adclick stream --runner flink` does
// with its default flags (cmd/adclick streamOptions.config). Building needs no
// broker: the reader lists partitions when the job runs, so the address is
// never dialled.
func streamJob(t *testing.T) (*beam.Pipeline, beam.Scope) {
	t.Helper()
	brokers := []string{"kafka.invalid:9092"}
	agg := transforms.DefaultConfig()
	agg.Streaming = true
	agg.AllowedLateness = 5 * time.Minute
	agg.EarlyFiring = 2 * time.Second
	cfg := pipelines.StreamConfig{
		Raw: kafkaio.ReadConfig{Brokers: brokers, Topic: "adclick-raw", Group: "adclick-stream", StartOffset: kafkaio.Earliest,
			WatermarkDelay: 5 * time.Second, IdleTimeout: 10 * time.Second, AllowedLateness: agg.AllowedLateness,
			Coordination: pipelines.CoordinationFor(runners.Flink)},
		Results:     kafkaio.WriteConfig{Brokers: brokers, Topic: "adclick-results"},
		DeadLetters: kafkaio.WriteConfig{Brokers: brokers, Topic: "adclick-dead-letters"},
		Aggregation: agg,
	}
	p, s := beam.NewPipelineWithRoot()
	if err := pipelines.Stream(s, cfg); err != nil {
		t.Fatal(err)
	}
	return p, s
}

// recountJob builds `adclick aggregate --input FILE`'s pipeline.
func recountJob(t *testing.T) *beam.Pipeline {
	t.Helper()
	dir := t.TempDir()
	p, s := beam.NewPipelineWithRoot()
	err := pipelines.RecountFiles(s, []string{filepath.Join(dir, "clicks.jsonl")}, transforms.DefaultConfig(),
		filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "dead.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// recountStoreJob builds `adclick aggregate --from-store cassandra`'s
// pipeline (the store a cluster would use); building opens no store.
func recountStoreJob(t *testing.T) *beam.Pipeline {
	t.Helper()
	p, s := beam.NewPipelineWithRoot()
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st := backend.Config{Backend: backend.Cassandra, Hosts: []string{"cassandra.invalid"}}
	err := pipelines.RecountStore(s, st, from, from.Add(time.Hour), transforms.DefaultConfig(), storeio.ReadOptions{},
		filepath.Join(t.TempDir(), "out.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func flinkViolations(t *testing.T, p *beam.Pipeline) []runners.Violation {
	t.Helper()
	pp, err := runners.MarshalPortable(p)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := runners.FlinkUnsupported(pp)
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// TestFlinkCapabilities: the streaming job and both recounts, marshalled as
// the universal runner submits them, use nothing Flink's portable runner
// lacks (runners/capabilities.go cites what that is and where it is said).
func TestFlinkCapabilities(t *testing.T) {
	stream, _ := streamJob(t)
	pp, err := runners.MarshalPortable(stream)
	if err != nil {
		t.Fatal(err)
	}
	// The walk must have reached what it is meant to judge, or an empty
	// result proves nothing: the job's keyed state and timers, and its
	// unbounded splittable reader.
	var states, timerFams, sdfs int
	for _, r := range pp.GetRequirements() {
		t.Logf("requirement %s", r)
	}
	for _, id := range sortedTransforms(pp) {
		pl := parDoPayload(t, pp, id)
		if pl == nil {
			continue
		}
		states += len(pl.GetStateSpecs())
		timerFams += len(pl.GetTimerFamilySpecs())
		if pl.GetRestrictionCoderId() != "" {
			sdfs++
		}
	}
	if states == 0 || timerFams == 0 || sdfs == 0 {
		t.Fatalf("the streaming job's proto has %d state specs, %d timer families, %d splittable DoFns; expected each above 0", states, timerFams, sdfs)
	}
	t.Logf("streaming job: %d transforms, %d state specs, %d timer families, %d splittable DoFns",
		len(pp.GetComponents().GetTransforms()), states, timerFams, sdfs)
	for name, p := range map[string]*beam.Pipeline{"stream": stream, "recount": recountJob(t), "recount --from-store": recountStoreJob(t)} {
		for _, v := range flinkViolations(t, p) {
			t.Errorf("%s: %s", name, v)
		}
	}
}

// TestFlinkCapabilitiesCatch: the checker reports each unsupported feature
// when a tiny DoFn using it is added to the streaming job; a job that used
// any of them must not pass TestFlinkCapabilities.
func TestFlinkCapabilitiesCatch(t *testing.T) {
	for _, tc := range []struct {
		name string
		fn   any
		want string
		// onReader applies fn to the job's own Kafka reader output (unbounded)
		// instead of a small keyed collection.
		onReader bool
	}{
		{"map state", &mapStateFn{Seen: state.MakeMapState[string, int]("seen")}, `state "seen" is Map/Set`, false},
		{"set state", &setStateFn{Seen: state.MakeSetState[string]("seen")}, `state "seen" is Map/Set`, false},
		{"processing-time timer", &procTimerFn{Flush: timers.InProcessingTime("flush")}, `timer family "flush" is in the PROCESSING_TIME domain`, false},
		{"bundle finalization", &finalizeFn{}, "requests bundle finalization", false},
		{"unbounded SDF without self-checkpoint", &noCheckpointSDF{}, "returns no ProcessContinuation", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, s := streamJob(t)
			if tc.onReader {
				lines := kafkaio.Read(s, kafkaio.ReadConfig{Brokers: []string{"kafka.invalid:9092"}, Topic: "adclick-raw"})
				beam.ParDo(s, tc.fn, lines)
			} else {
				beam.ParDo0(s, tc.fn, beam.ParDo(s, toKV, beam.Create(s, "a", "b")))
			}
			vs := flinkViolations(t, p)
			t.Logf("violations: %v", vs)
			found := false
			for _, v := range vs {
				found = found || strings.Contains(v.Problem, tc.want)
			}
			if !found {
				t.Errorf("violations %v, want one containing %q", vs, tc.want)
			}
			if tc.name == "bundle finalization" && !hasRequirementViolation(vs, "finalization") {
				t.Errorf("violations %v: the pipeline's finalization requirement was not reported", vs)
			}
		})
	}
}

func hasRequirementViolation(vs []runners.Violation, what string) bool {
	for _, v := range vs {
		if v.Transform == "" && strings.Contains(v.Problem, what) {
			return true
		}
	}
	return false
}

func toKV(s string) (string, int) { return s, 1 }

type mapStateFn struct{ Seen state.Map[string, int] }

func (f *mapStateFn) ProcessElement(sp state.Provider, k string, v int) error {
	return f.Seen.Put(sp, k, v)
}

type setStateFn struct{ Seen state.Set[string] }

func (f *setStateFn) ProcessElement(sp state.Provider, k string, _ int) error {
	return f.Seen.Add(sp, k)
}

type procTimerFn struct{ Flush timers.ProcessingTime }

func (f *procTimerFn) ProcessElement(tp timers.Provider, _ string, _ int) {
	f.Flush.Set(tp, time.Now().Add(time.Second))
}

func (f *procTimerFn) OnTimer(_ context.Context, _ timers.Provider, _ string, _ timers.Context) {}

type finalizeFn struct{}

func (f *finalizeFn) ProcessElement(bf beam.BundleFinalization, _ string, _ int) {
	bf.RegisterCallback(time.Minute, func() error { return nil })
}

// noCheckpointSDF is splittable but cannot checkpoint itself: applied to an
// unbounded input it would hold its bundle forever on Flink.
type noCheckpointSDF struct{}

func (*noCheckpointSDF) CreateInitialRestriction(click.Lines) offsetrange.Restriction {
	return offsetrange.Restriction{Start: 0, End: 1}
}

func (*noCheckpointSDF) SplitRestriction(_ click.Lines, r offsetrange.Restriction) []offsetrange.Restriction {
	return []offsetrange.Restriction{r}
}

func (*noCheckpointSDF) RestrictionSize(_ click.Lines, r offsetrange.Restriction) float64 {
	return r.Size()
}

func (*noCheckpointSDF) CreateTracker(r offsetrange.Restriction) *sdf.LockRTracker {
	return sdf.NewLockRTracker(offsetrange.NewTracker(r))
}

func (*noCheckpointSDF) ProcessElement(rt *sdf.LockRTracker, l click.Lines, emit func(int)) {
	for i := rt.GetRestriction().(offsetrange.Restriction).Start; rt.TryClaim(i); i++ {
		emit(len(l.Lines))
	}
}

func init() {
	register.DoFn3x0[*sdf.LockRTracker, click.Lines, func(int)](&noCheckpointSDF{})
	register.Emitter1[int]()
	register.Function1x2(toKV)
	register.DoFn3x1[state.Provider, string, int, error](&mapStateFn{})
	register.DoFn3x1[state.Provider, string, int, error](&setStateFn{})
	register.DoFn3x0[timers.Provider, string, int](&procTimerFn{})
	register.DoFn3x0[beam.BundleFinalization, string, int](&finalizeFn{})
}

func sortedTransforms(pp *pipepb.Pipeline) []string {
	ids := make([]string, 0, len(pp.GetComponents().GetTransforms()))
	for id := range pp.GetComponents().GetTransforms() {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// parDoPayload is the ParDo payload of transform id, nil for other
// transforms.
func parDoPayload(t *testing.T, pp *pipepb.Pipeline, id string) *pipepb.ParDoPayload {
	t.Helper()
	tr := pp.GetComponents().GetTransforms()[id]
	if tr.GetSpec().GetUrn() != "beam:transform:pardo:v1" {
		return nil
	}
	var pl pipepb.ParDoPayload
	if err := proto.Unmarshal(tr.GetSpec().GetPayload(), &pl); err != nil {
		t.Fatalf("transform %s: %v", id, err)
	}
	return &pl
}

// TestFlinkJobHasNoCommitGate: on Flink the streaming job coordinates through
// the runner's checkpoints, so it has no commit gate (whose sinks report
// through process memory); the prism job has one, so the check can fail.
func TestFlinkJobHasNoCommitGate(t *testing.T) {
	gated := func(p *beam.Pipeline) int {
		pp, err := runners.MarshalPortable(p)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, tr := range pp.GetComponents().GetTransforms() {
			if strings.Contains(tr.GetUniqueName(), "WriteKVGated") && len(tr.GetSubtransforms()) == 0 {
				n++
			}
		}
		return n
	}
	flink, _ := streamJob(t)
	if n := gated(flink); n != 0 {
		t.Errorf("the Flink streaming job has %d gated-writer transforms, want none", n)
	}
	p, s := beam.NewPipelineWithRoot()
	brokers := []string{"kafka.invalid:9092"}
	agg := transforms.DefaultConfig()
	agg.Streaming = true
	cfg := pipelines.StreamConfig{
		Raw:         kafkaio.ReadConfig{Brokers: brokers, Topic: "raw", Coordination: pipelines.CoordinationFor(runners.Prism)},
		Results:     kafkaio.WriteConfig{Brokers: brokers, Topic: "results"},
		DeadLetters: kafkaio.WriteConfig{Brokers: brokers, Topic: "dead"},
		Aggregation: agg,
	}
	if err := pipelines.Stream(s, cfg); err != nil {
		t.Fatal(err)
	}
	if gated(p) == 0 {
		t.Error("the prism streaming job has no gated writer: the check above proves nothing")
	}
}
