package runners

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/graphx"
	v1pb "github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/graphx/v1"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/util/protox"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"google.golang.org/protobuf/proto"
)

// Violation is one thing in a portable pipeline that Flink's portable
// runner cannot run.
type Violation struct {
	Transform string // the transform's unique name; empty for the pipeline itself
	Problem   string
}

func (v Violation) String() string {
	if v.Transform == "" {
		return "pipeline: " + v.Problem
	}
	return v.Transform + ": " + v.Problem
}

// MarshalPortable turns p into the model pipeline the way the universal
// runner (runners.Run with Flink) submits it: the same graphx.Marshal, with
// Beam's default environment (the Go SDK's Docker image). The environment
// does not change any transform; it is set so that the proto is complete.
func MarshalPortable(p *beam.Pipeline) (*pipepb.Pipeline, error) {
	edges, _, err := p.Build()
	if err != nil {
		return nil, fmt.Errorf("runners: build pipeline: %w", err)
	}
	env, err := graphx.CreateEnvironment(context.Background(), graphx.URNEnvDocker,
		func(context.Context) string { return core.DefaultDockerImage })
	if err != nil {
		return nil, fmt.Errorf("runners: environment: %w", err)
	}
	pp, err := graphx.Marshal(edges, &graphx.Options{Environment: env})
	if err != nil {
		return nil, fmt.Errorf("runners: marshal pipeline: %w", err)
	}
	return pp, nil
}

// Sources of what Flink's portable runner supports (Beam 2.73.0 and the
// Flink runner it ships):
//
//   - [matrix]: Beam's capability matrix, Flink column: "State is supported for
//     non-merging windows. SetState and MapState are not yet supported";
//     bundle finalization "No" for bounded and unbounded SDFs; side inputs of
//     unbounded SDFs "No"; dynamic splitting "No".
//     https://github.com/apache/beam/blob/master/website/www/site/data/capability_matrix.yaml
//     (rendered at https://beam.apache.org/documentation/runners/capability-matrix/)
//   - [gotests]: the Go SDK's own skip list for Flink, flinkFilters in
//     sdks/go/test/integration/integration.go at v2.73.0 (in the module cache
//     under go/test/integration): TestMapState*, TestSetState*,
//     TestOrderedListState ("Flink does not support map based state types"),
//     TestTimers_ProcessingTime.* ("Flink doesn't support processing time
//     timers"), TestParDoBundleFinalizer.* ("no support for BundleFinalizer"),
//     TestTestStream* (extra length prefixes), TestDrain (no SDF drain).
//   - [translator]: runners/flink/src/main/java/org/apache/beam/runners/flink/
//     FlinkStreamingPortablePipelineTranslator.java: the primitive URNs it
//     translates (impulse, group_by_key, flatten, assign_windows, reshuffle,
//     executable stages fused from ParDos); any other leaf URN fails with
//     "Unknown type of URN".
//   - [sdfckpt]: https://github.com/apache/beam/issues/20979 — portable
//     runners never ask an SDF to checkpoint, so an unbounded SDF that does
//     not return a ProcessContinuation runs one bundle forever and nothing
//     downstream ever sees its watermark.
//   - [proto]: Pipeline.requirements in beam_runner_api.proto: "A runner
//     should reject any pipelines with unknown requirements."

// flinkPrimitives are the leaf transform URNs Flink's portable translator
// handles, directly or by fusing them into executable stages [translator].
var flinkPrimitives = []string{
	graphx.URNImpulse, graphx.URNGBK, graphx.URNFlatten, graphx.URNWindow,
	graphx.URNReshuffle, graphx.URNParDo,
}

// flinkRequirements are the pipeline requirements Flink's portable runner
// meets: stateful ParDos (Value/Bag/Combining state, event-time timers) and
// splittable DoFns. Bundle finalization is not among them [matrix],
// [gotests].
var flinkRequirements = []string{
	graphx.URNRequiresStatefulProcessing, graphx.URNRequiresSplittableDoFn,
}

// FlinkUnsupported walks every transform of pp and returns, sorted, each use
// of something Flink's portable runner does not support (see the sources
// above). An empty result means nothing known stands in the way; it is not
// a proof that the job runs well on Flink.
func FlinkUnsupported(pp *pipepb.Pipeline) ([]Violation, error) {
	var out []Violation
	for _, r := range pp.GetRequirements() {
		if !slices.Contains(flinkRequirements, r) {
			out = append(out, Violation{Problem: fmt.Sprintf("requirement %s is not supported [matrix, gotests, proto]", r)})
		}
	}
	comps := pp.GetComponents()
	for id, t := range comps.GetTransforms() {
		name := t.GetUniqueName()
		if name == "" {
			name = id
		}
		if len(t.GetSubtransforms()) > 0 {
			continue // composites are expanded; their leaves are checked
		}
		urn := t.GetSpec().GetUrn()
		if !slices.Contains(flinkPrimitives, urn) {
			out = append(out, Violation{name, fmt.Sprintf("transform URN %s is not translated by Flink's portable runner [translator]", urn)})
			continue
		}
		if urn != graphx.URNParDo {
			continue
		}
		vs, err := flinkParDo(comps, t)
		if err != nil {
			return nil, fmt.Errorf("runners: transform %s: %w", name, err)
		}
		for _, p := range vs {
			out = append(out, Violation{name, p})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}

// flinkParDo checks one ParDo's payload.
func flinkParDo(comps *pipepb.Components, t *pipepb.PTransform) ([]string, error) {
	var pl pipepb.ParDoPayload
	if err := proto.Unmarshal(t.GetSpec().GetPayload(), &pl); err != nil {
		return nil, fmt.Errorf("decode ParDo payload: %w", err)
	}
	var out []string
	for sid, s := range pl.GetStateSpecs() {
		// Map and Set state travel as multimap user state, ordered lists as
		// their own protocol; Flink has handlers for bag user state only.
		switch {
		case s.GetMapSpec() != nil, s.GetSetSpec() != nil, s.GetMultimapSpec() != nil, s.GetOrderedListSpec() != nil:
			out = append(out, fmt.Sprintf("state %q is Map/Set/Multimap/OrderedList state, which Flink does not support [matrix, gotests]", sid))
		case s.GetProtocol().GetUrn() != "" && s.GetProtocol().GetUrn() != graphx.URNBagUserState:
			out = append(out, fmt.Sprintf("state %q uses protocol %s; Flink serves bag user state only [gotests]", sid, s.GetProtocol().GetUrn()))
		}
	}
	for tid, ts := range pl.GetTimerFamilySpecs() {
		if ts.GetTimeDomain() != pipepb.TimeDomain_EVENT_TIME {
			out = append(out, fmt.Sprintf("timer family %q is in the %v domain; Flink's portable runner supports event-time timers only [gotests]", tid, ts.GetTimeDomain()))
		}
	}
	if pl.GetRequestsFinalization() {
		out = append(out, "requests bundle finalization, which Flink does not support [matrix, gotests]")
	}

	main, err := mainInput(t, &pl)
	if err != nil {
		return nil, err
	}
	in := comps.GetPcollections()[main]
	if len(pl.GetStateSpecs()) > 0 || len(pl.GetTimerFamilySpecs()) > 0 {
		// Flink keys a stateful stage's stream by the element's key and keeps
		// state per key and window; merging windows are not supported.
		if c := comps.GetCoders()[in.GetCoderId()]; c.GetSpec().GetUrn() != "beam:coder:kv:v1" {
			out = append(out, fmt.Sprintf("stateful, but its input %s is not key-value coded (%s)", main, c.GetSpec().GetUrn()))
		}
		if ws := comps.GetWindowingStrategies()[in.GetWindowingStrategyId()]; ws.GetMergeStatus() == pipepb.MergeStatus_NEEDS_MERGE {
			out = append(out, "stateful in merging windows, which Flink does not support [matrix]")
		}
	}

	if pl.GetRestrictionCoderId() == "" {
		return out, nil // not splittable
	}
	unbounded := false
	for _, pc := range t.GetOutputs() {
		unbounded = unbounded || comps.GetPcollections()[pc].GetIsBounded() == pipepb.IsBounded_UNBOUNDED
	}
	if !unbounded {
		return out, nil
	}
	if len(pl.GetSideInputs()) > 0 {
		out = append(out, "an unbounded splittable DoFn with side inputs, which Flink does not support [matrix]")
	}
	selfCheckpoints, err := returnsContinuation(pl.GetDoFn())
	if err != nil {
		return nil, err
	}
	if !selfCheckpoints {
		out = append(out, "an unbounded splittable DoFn whose ProcessElement returns no ProcessContinuation cannot checkpoint itself, and Flink never asks it to [sdfckpt]")
	}
	return out, nil
}

// mainInput is the one input of t that is not a side input.
func mainInput(t *pipepb.PTransform, pl *pipepb.ParDoPayload) (string, error) {
	var ids []string
	for local, pc := range t.GetInputs() {
		if _, side := pl.GetSideInputs()[local]; !side {
			ids = append(ids, pc)
		}
	}
	if len(ids) != 1 {
		return "", fmt.Errorf("%d main inputs, want 1", len(ids))
	}
	return ids[0], nil
}

// returnsContinuation decodes a Go DoFn from its payload, as the Go worker
// does, and says whether its ProcessElement returns an
// sdf.ProcessContinuation: the only way a Go SDF can checkpoint itself.
func returnsContinuation(fn *pipepb.FunctionSpec) (bool, error) {
	if fn.GetUrn() != graphx.URNDoFn {
		return false, fmt.Errorf("DoFn URN %s is not a Go DoFn", fn.GetUrn())
	}
	var tp v1pb.TransformPayload
	if err := protox.DecodeBase64(string(fn.GetPayload()), &tp); err != nil {
		return false, fmt.Errorf("decode Go DoFn: %w", err)
	}
	_, gfn, _, _, _, err := graphx.DecodeMultiEdge(tp.GetEdge())
	if err != nil {
		return false, fmt.Errorf("decode Go DoFn: %w", err)
	}
	dofn, err := graph.AsDoFn(gfn, graph.MainUnknown)
	if err != nil {
		return false, fmt.Errorf("decode Go DoFn: %w", err)
	}
	_, ok := dofn.ProcessElementFn().ProcessContinuation()
	return ok, nil
}
