package kafkaio

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"math"
	"sync"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/timers"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
)

func init() {
	register.DoFn5x1[context.Context, beam.EventTime, []byte, []byte, func(string, int64), error](&writeMarkFn{})
	register.Emitter2[string, int64]()
	register.DoFn3x0[timers.Provider, string, int64](&progressFn{})
}

// Gate ties a Read's offset commits to the sinks that write what the job
// computed from it. A commit tells a restarted job that the minutes it closes
// are final downstream, so their records are not counted again (doc.go, "the
// commit metadata"); that is only true once every result of those minutes is
// in the sink's topic. A fixed CommitDelay is a guess at how long that takes,
// and under load the pipeline took longer: a job killed just after such a
// commit left top-N lists its successor could not complete. With a gate, a
// commit also waits until the sinks' watermark has passed the minutes it
// closes.
//
// How the sinks' watermark is learnt: each gated writer emits one marker per
// bundle, after which a stateful stage sets an event-time timer at the
// marker's time (and keeps re-setting it further on, see progressFn). The
// timer fires once the writers' output watermark has passed it, and prism holds that watermark while any element the writers
// are yet to write is pending (a result on its way, late or not, holds every
// stage from the source to the writer at most at the source watermark it
// left with). The timer publishes its time to a process-wide registry the
// reader consults before each commit: the same one-process limit as the
// reader's shared watermark (readWatermarks), true of prism. A gate is
// therefore InProcess only: with Checkpointed coordination the runner's
// checkpoints make restarts exact and no gate is built.
//
// The zero Gate gates nothing.
type Gate struct {
	ID    string // unique per pipeline; empty: no gate
	Sinks int    // gated writers; a commit waits for all of them
}

// NewGate returns a gate for sinks gated writers.
func NewGate(sinks int) Gate {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return Gate{ID: hex.EncodeToString(b[:]), Sinks: sinks}
}

// gateRegistry holds, per gate, each sink's progress: an event time (Unix ms)
// the sink's output watermark has passed. Process state by necessity, like
// readRegistry.
var gateRegistry = struct {
	sync.Mutex
	m map[string]map[string]int64
}{m: map[string]map[string]int64{}}

func reportProgress(gate, sink string, t int64) {
	gateRegistry.Lock()
	defer gateRegistry.Unlock()
	g := gateRegistry.m[gate]
	if g == nil {
		g = map[string]int64{}
		gateRegistry.m[gate] = g
	}
	if t > g[sink] {
		g[sink] = t
	}
}

// progress returns the time every sink of g has passed, or minWM while some
// sink has not reported yet (then nothing is final downstream).
func (g Gate) progress() int64 {
	gateRegistry.Lock()
	defer gateRegistry.Unlock()
	sinks := gateRegistry.m[g.ID]
	if len(sinks) < g.Sinks {
		return minWM
	}
	p := int64(math.MaxInt64)
	for _, t := range sinks {
		p = min(p, t)
	}
	return p
}

// WriteKVGated is WriteKV that reports its progress to gate under the name
// sink (unique among the gate's sinks).
func WriteKVGated(s beam.Scope, cfg WriteConfig, kvs beam.PCollection, gate Gate, sink string) {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	if gate.ID == "" {
		panic("kafkaio: WriteKVGated needs a gate from NewGate")
	}
	s = s.Scope("kafkaio.WriteKVGated")
	marks := beam.ParDo(s, &writeMarkFn{writeFn: writeFn{Cfg: cfg.withDefaults()}, Sink: sink}, kvs)
	marks = beam.WindowInto(s, window.NewGlobalWindows(), marks)
	beam.ParDo0(s, &progressFn{Gate: gate.ID, Sink: sink, Timer: timers.InEventTime("progress")}, marks)
}

// writeMarkFn is writeFn plus one marker per bundle: the time of the bundle's
// first element, keyed by the sink.
type writeMarkFn struct {
	writeFn
	Sink   string
	marked bool
}

// StartBundle and FinishBundle take the emitter because the SDK requires
// every bundle method to when ProcessElement has one.
func (f *writeMarkFn) StartBundle(func(string, int64)) { f.marked = false }

func (f *writeMarkFn) FinishBundle(ctx context.Context, _ func(string, int64)) error {
	return f.writeFn.FinishBundle(ctx)
}

func (f *writeMarkFn) ProcessElement(ctx context.Context, ts beam.EventTime, k, v []byte, mark func(string, int64)) error {
	if !f.marked {
		f.marked = true
		mark(f.Sink, ts.Milliseconds())
	}
	return f.writeFn.ProcessElement(ctx, k, v)
}

// progressStep is the finest step of a sink's progress.
const progressStep = time.Second

// progressAhead stops a sink's timer loop this far past the wall clock: the
// reader's watermark never gets there (records are clamped to MaxSkew ahead),
// except at the end of a bounded read, where it jumps to the end of time.
const progressAhead = time.Minute

// progressFn learns how far the writers' output watermark has come. Each
// marker sets the sink's timer at the marker's time; when the timer fires
// (the watermark passed it) the time is published and the timer set again
// further on, so the progress follows the watermark also while no data
// flows (the idle rule moves the watermark then, and the minutes it closes
// must still be committed). Each step is an eighth of the way to the wall
// clock (at least a second), so catching up from far behind takes tens of
// firings, not one per second of event time.
type progressFn struct {
	Gate, Sink string
	Timer      timers.EventTime
}

func (f *progressFn) ProcessElement(tp timers.Provider, _ string, t int64) {
	f.Timer.Set(tp, time.UnixMilli(roundUp(t, progressStep.Milliseconds())))
}

func (f *progressFn) OnTimer(_ context.Context, ts beam.EventTime, tp timers.Provider, _ string, _ timers.Context) {
	t := ts.Milliseconds()
	reportProgress(f.Gate, f.Sink, t)
	now := time.Now().UnixMilli()
	if t > now+progressAhead.Milliseconds() {
		return // the end of a bounded read; a later marker starts again
	}
	step := max(progressStep.Milliseconds(), (now-t)/2)
	if t >= now {
		// Only the end of a bounded read gets the watermark past the clock:
		// one more firing past progressAhead ends the loop.
		step = progressAhead.Milliseconds() + 1
	}
	f.Timer.Set(tp, time.UnixMilli(roundUp(t+step, progressStep.Milliseconds())))
}

func roundUp(t, step int64) int64 {
	r := t - t%step
	if r < t {
		r += step
	}
	return r
}
