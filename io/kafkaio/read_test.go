package kafkaio

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/adclick/adclick/domain/click"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/metrics"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/stats"
	"github.com/twmb/franz-go/pkg/kadm"
)

// TestReadBounded: with EndOffsets every record present at the start is read
// exactly once and the pipeline ends, whatever the batch and checkpoint
// budgets (tiny budgets force hundreds of self-checkpoints and resumes).
func TestReadBounded(t *testing.T) {
	for _, be := range backends() {
		for _, tc := range []struct {
			name       string
			poll, ckpt int
		}{
			{"default budgets", 0, 0},
			{"checkpoint every 7 records", 5, 7},
		} {
			t.Run(be.name+"/"+tc.name, func(t *testing.T) {
				brokers := be.brokers(t)
				topic := newTopic(t, brokers, 3)
				var recs []rec
				var want []string
				base := time.Now().Add(-time.Hour).UnixMilli()
				for i := range 1500 {
					v := fmt.Sprintf("%d|r%d", base+int64(i), i)
					recs = append(recs, rec{partition: int32(i % 3), ts: base + int64(i), value: v})
					want = append(want, v)
				}
				produce(t, brokers, topic, recs)

				p, s := beam.NewPipelineWithRoot()
				lines := Read(s, ReadConfig{Brokers: brokers, Topic: topic, EndOffsets: true,
					MaxPollRecords: tc.poll, CheckpointAfter: tc.ckpt})
				passert.EqualsList(s, beam.ParDo(s, flattenLines, lines), want)
				type result struct {
					r   beam.PipelineResult
					err error
				}
				done := make(chan result, 1)
				go func() {
					r, err := ptest.RunWithMetrics(p)
					done <- result{r, err}
				}()
				select {
				case res := <-done:
					if res.err != nil {
						t.Fatal(res.err)
					}
					var read int64
					for _, c := range res.r.Metrics().Query(func(r metrics.SingleResult) bool {
						return r.Namespace() == "kafkaio" && r.Name() == "records_read"
					}).Counters() {
						read += c.Result()
					}
					if read != int64(len(want)) {
						t.Errorf("records_read metric %d, want %d", read, len(want))
					}
				case <-time.After(120 * time.Second):
					t.Fatal("bounded read did not end")
				}
			})
		}
	}
}

func TestReadErrors(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			brokers := be.brokers(t)
			topic := newTopic(t, brokers, 2)
			for _, tc := range []struct {
				name string
				cfg  ReadConfig
				want string
			}{
				{"missing topic", ReadConfig{Brokers: brokers, Topic: topic + "-missing", EndOffsets: true}, "does not exist"},
				{"missing partition", ReadConfig{Brokers: brokers, Topic: topic, Partitions: []int32{7}, EndOffsets: true}, "no partition 7"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					p, s := beam.NewPipelineWithRoot()
					beam.ParDo(s, flattenLines, Read(s, tc.cfg))
					err := ptest.Run(p)
					if err == nil || !strings.Contains(err.Error(), tc.want) {
						t.Fatalf("got %v, want an error containing %q", err, tc.want)
					}
				})
			}
		})
	}
	p, s := beam.NewPipelineWithRoot()
	if _, err := TryRead(s, ReadConfig{Topic: "t"}); err == nil || !strings.Contains(err.Error(), "no brokers") {
		t.Fatalf("TryRead without brokers: %v", err)
	}
	_ = p
}

// streamRun is an unbounded pipeline running on prism.
type streamRun struct {
	cancel context.CancelFunc
	done   chan error
	err    error
	ended  bool
}

// failed reports, without blocking, whether the pipeline ended on its own.
func (r *streamRun) failed() error {
	if r.ended {
		return r.err
	}
	select {
	case err := <-r.done:
		r.ended = true
		r.err = fmt.Errorf("pipeline ended before it was stopped: %v", err)
		return r.err
	default:
		return nil
	}
}

// stop cancels the pipeline and waits for it.
func (r *streamRun) stop(t *testing.T) {
	if r.ended {
		return
	}
	r.cancel()
	select {
	case <-r.done:
		r.ended = true
	case <-time.After(30 * time.Second):
		t.Error("pipeline did not stop within 30 s of cancellation")
	}
}

// runStreaming runs p on prism until stopped or the test ends.
func runStreaming(t *testing.T, p *beam.Pipeline) *streamRun {
	ctx, cancel := context.WithCancel(context.Background())
	r := &streamRun{cancel: cancel, done: make(chan error, 1)}
	go func() {
		_, err := prism.Execute(ctx, p)
		r.done <- err
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// windowedCount builds Read → event-time fixed windows → count → Write to
// out, so a window's count reaches out only when the watermark of every
// partition has passed its end.
func windowedCount(s beam.Scope, brokers []string, in, out string, win time.Duration, cfg ReadConfig) {
	cfg.Brokers, cfg.Topic = brokers, in
	timed := beam.ParDo(s, timedLines, Read(s, cfg))
	counts := stats.Count(s, beam.WindowInto(s, window.NewFixedWindows(win), timed))
	Write(s, WriteConfig{Brokers: brokers, Topic: out}, keyByLine, beam.ParDo(s, formatCount, counts))
}

// TestWatermarkIdlePartition: partition 0 gets the records of one window,
// partition 1 never gets any. The window must still fire, which needs the idle
// rule on partition 1 (and on partition 0: its own records cannot close their
// window).
//
// "topic empty at start" produces only once the pipeline has run for a while,
// which is where a prism watermark stall was reported upstream (#39446): the
// records are then recent (older ones would be behind the idle watermark, i.e.
// late, and rightly dropped), so the window is 5 s long to fire quickly.
func TestWatermarkIdlePartition(t *testing.T) {
	for _, be := range backends() {
		for _, late := range []bool{false, true} {
			name := be.name + "/data before start"
			if late {
				name = be.name + "/topic empty at start"
			}
			t.Run(name, func(t *testing.T) {
				brokers := be.brokers(t)
				in, out := newTopic(t, brokers, 2), newTopic(t, brokers, 1)
				cfg := ReadConfig{IdleTimeout: time.Second, MaxSkew: time.Second, WatermarkDelay: time.Second}
				win := time.Minute
				p, s := beam.NewPipelineWithRoot()
				mk := func() []rec {
					ts := time.Now().Add(-10 * time.Minute).Truncate(time.Minute).Add(time.Second).UnixMilli()
					if late {
						ts = time.Now().Add(-2 * time.Second).UnixMilli()
					}
					var recs []rec
					for i := range 40 {
						recs = append(recs, rec{partition: 0, ts: ts, value: fmt.Sprintf("%d|x%d", ts, i)})
					}
					return recs
				}
				var recs []rec
				if late {
					cfg.MaxSkew, win = 5*time.Second, 5*time.Second
				} else {
					recs = mk()
					produce(t, brokers, in, recs)
				}
				windowedCount(s, brokers, in, out, win, cfg)
				run := runStreaming(t, p)
				if late {
					time.Sleep(5 * time.Second)
					recs = mk()
					produce(t, brokers, in, recs)
				}
				end := time.UnixMilli(recs[0].ts).Truncate(win).Add(win).UnixMilli()
				want := fmt.Sprintf("%d:%d", end, len(recs))
				consumeUntil(t, brokers, out, 90*time.Second, run, func(v []string) bool { return slices.Contains(v, want) })
				run.stop(t)
			})
		}
	}
}

// TestCommitAndRestore: the reader commits, per partition, the first offset of
// the oldest window still open (with the watermark as of that offset), and a
// restarted reader resumes there with the estimator restored.
func TestCommitAndRestore(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			brokers := be.brokers(t)
			in := newTopic(t, brokers, 2)
			group := in + "-g"
			now := time.Now().UnixMilli()
			old := now - 30*60_000
			var recs []rec
			for i := range 100 { // partition 0: a closed minute
				recs = append(recs, rec{0, old + int64(i), fmt.Sprintf("%d|old%d", old+int64(i), i)})
			}
			for i := range 50 { // partition 1: the current minute, still open
				recs = append(recs, rec{1, now + int64(i), fmt.Sprintf("%d|new%d", now+int64(i), i)})
			}
			produce(t, brokers, in, recs)
			cfg := ReadConfig{Brokers: brokers, Topic: in, Group: group,
				IdleTimeout: time.Second, MaxSkew: time.Second, WatermarkDelay: time.Second,
				AllowedLateness: 2 * time.Minute, Margin: time.Second,
				CommitDelay: 300 * time.Millisecond, CommitInterval: 200 * time.Millisecond}

			p, s := beam.NewPipelineWithRoot()
			beam.ParDo(s, flattenLines, Read(s, cfg))
			run := runStreaming(t, p)
			adm := newAdmin(t, brokers)
			waitCommitted(t, adm, group, in, run, func(got kadm.OffsetResponses) bool {
				o0, ok0 := got.Lookup(in, 0)
				o1, ok1 := got.Lookup(in, 1)
				return ok0 && ok1 && o0.At == 100 && o1.At >= 0
			})
			time.Sleep(time.Second) // more commit rounds: partition 1 must stay put
			run.stop(t)

			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c := cfg.withDefaults()
			specs, err := discover(ctx, &c)
			if err != nil {
				t.Fatal(err)
			}
			if len(specs) != 2 || specs[0].Start != 100 || specs[1].Start != 0 {
				t.Fatalf("restored starts %+v, want partition 0 at 100 (closed minute) and 1 at 0 (open minute)", specs)
			}
			s0, err := decodeState(specs[0].State)
			if err != nil {
				t.Fatal(err)
			}
			if s0.WM <= old || s0.WM > time.Now().UnixMilli() {
				t.Fatalf("partition 0 restored watermark %d, want past the old minute %d and not in the future", s0.WM, old)
			}
			s1, _ := decodeState(specs[1].State)
			if s1.WM >= now {
				t.Fatalf("partition 1 restored watermark %d, want before its first record %d", s1.WM, now)
			}

			// A restart re-reads exactly the open window's records plus what is new.
			var want []string
			for _, r := range recs[100:] {
				want = append(want, r.value)
			}
			extra := []rec{{0, now, fmt.Sprintf("%d|extra", now)}}
			produce(t, brokers, in, extra)
			want = append(want, extra[0].value)
			cfg.EndOffsets = true
			p2, s2 := beam.NewPipelineWithRoot()
			passert.EqualsList(s2, beam.ParDo(s2, flattenLines, Read(s2, cfg)), want)
			if err := ptest.Run(p2); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func linesWithWatermark(b click.Lines, emit func(string)) {
	for _, l := range b.Lines {
		emit(fmt.Sprintf("%d@%s", b.Watermark, l))
	}
}

// TestReadBatchWatermarks: the Watermark of every emitted batch is the
// partition watermark just before its records, exactly as the estimator
// computes it from the data alone, even across hundreds of self-checkpoints
// (the estimator state travels with the restriction).
func TestReadBatchWatermarks(t *testing.T) {
	for _, be := range backends() {
		for _, noLate := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/NoLateness=%v", be.name, noLate), func(t *testing.T) {
				brokers := be.brokers(t)
				topic := newTopic(t, brokers, 2)
				cfg := ReadConfig{Brokers: brokers, Topic: topic, EndOffsets: true, MaxPollRecords: 5, CheckpointAfter: 7,
					NoLateness: noLate}
				dc := cfg.withDefaults()
				pr := dc.params()
				base := time.Now().Add(-2 * time.Hour).Truncate(time.Minute).UnixMilli()
				var recs []rec
				var want []string
				states := []*partState{newPartState(), newPartState()}
				next := []int64{0, 0}
				for i := range 600 {
					part := int32(i % 2)
					ts := base + int64(i)*733 // crosses many watermark steps and minutes
					if i%37 == 0 {
						ts -= 90_000 // out of order
					}
					v := fmt.Sprintf("%d|r%d", ts, i)
					recs = append(recs, rec{part, ts, v})
					w := states[part].observe(&pr, next[part], ts, time.Now().UnixMilli())
					next[part]++
					if noLate {
						w = click.NoWatermark
					}
					want = append(want, fmt.Sprintf("%d@%s", w, v))
				}
				produce(t, brokers, topic, recs)
				p, s := beam.NewPipelineWithRoot()
				passert.EqualsList(s, beam.ParDo(s, linesWithWatermark, Read(s, cfg)), want)
				if err := ptest.Run(p); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// TestReadUnboundedExactlyOnce: an unbounded read with tiny batch and
// checkpoint budgets, of records produced before and while the pipeline runs,
// delivers each record exactly once (through Write to a second topic).
func TestReadUnboundedExactlyOnce(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			brokers := be.brokers(t)
			in, out := newTopic(t, brokers, 3), newTopic(t, brokers, 2)
			mk := func(from, n int) []rec {
				var recs []rec
				ts := time.Now().UnixMilli()
				for i := from; i < from+n; i++ {
					recs = append(recs, rec{int32(i % 3), ts, fmt.Sprintf("%d|r%d", ts, i)})
				}
				return recs
			}
			const n = 1500
			produce(t, brokers, in, mk(0, n))
			p, s := beam.NewPipelineWithRoot()
			lines := beam.ParDo(s, flattenLines, Read(s, ReadConfig{Brokers: brokers, Topic: in,
				MaxPollRecords: 13, CheckpointAfter: 29, CheckpointEvery: 50 * time.Millisecond}))
			Write(s, WriteConfig{Brokers: brokers, Topic: out}, keyByLine, lines)
			run := runStreaming(t, p)
			time.Sleep(2 * time.Second)
			produce(t, brokers, in, mk(n, n))
			consumeUntil(t, brokers, out, 90*time.Second, run, func(v []string) bool { return len(v) >= 2*n })
			time.Sleep(3 * time.Second) // duplicates would arrive now
			run.stop(t)
			got, _ := readAll(t, brokers, out)
			seen := map[string]int{}
			for _, r := range got {
				seen[r.value]++
			}
			if len(got) != 2*n || len(seen) != 2*n {
				t.Fatalf("out holds %d records, %d distinct; want %d, each once", len(got), len(seen), 2*n)
			}
		})
	}
}

// TestRestartRebuildsOpenWindow: a job stopped while a window is still open
// and restarted from its group's commits rebuilds that window from all of its
// records, not only from those that arrived after the stop.
func TestRestartRebuildsOpenWindow(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			brokers := be.brokers(t)
			in := newTopic(t, brokers, 2)
			out1, out2 := newTopic(t, brokers, 1), newTopic(t, brokers, 1)
			const win = 5 * time.Second
			cfg := ReadConfig{Group: in + "-g", IdleTimeout: time.Second, MaxSkew: 8 * time.Second,
				WatermarkDelay: time.Second, AllowedLateness: time.Millisecond, Margin: time.Millisecond,
				CommitDelay: 200 * time.Millisecond, CommitInterval: 100 * time.Millisecond}
			// A window starting a little ahead: it closes once the idle
			// watermark (wall clock − 9 s) passes its end, about 15 s from now.
			start := time.Now().Add(win).Truncate(win)
			mk := func(from, n int) []rec {
				var recs []rec
				for i := from; i < from+n; i++ {
					ts := start.Add(time.Duration(i) * time.Millisecond).UnixMilli()
					recs = append(recs, rec{0, ts, fmt.Sprintf("%d|r%d", ts, i)})
				}
				return recs
			}
			produce(t, brokers, in, mk(0, 30))

			p1, s1 := beam.NewPipelineWithRoot()
			windowedCount(s1, brokers, in, out1, win, cfg)
			run1 := runStreaming(t, p1)
			time.Sleep(3 * time.Second) // reads all 30, commits
			if err := run1.failed(); err != nil {
				t.Fatal(err)
			}
			run1.stop(t)
			if got, _ := readAll(t, brokers, out1); len(got) != 0 {
				t.Fatalf("window fired before the restart (%v): the test's timing is off", got)
			}

			produce(t, brokers, in, mk(30, 12))
			p2, s2 := beam.NewPipelineWithRoot()
			windowedCount(s2, brokers, in, out2, win, cfg)
			run2 := runStreaming(t, p2)
			want := fmt.Sprintf("%d:%d", start.Add(win).UnixMilli(), 42)
			consumeUntil(t, brokers, out2, 60*time.Second, run2, func(v []string) bool {
				for _, s := range v {
					if strings.HasPrefix(s, fmt.Sprintf("%d:", start.Add(win).UnixMilli())) && s != want {
						t.Fatalf("restarted job counted %s, want %s", s, want)
					}
				}
				return slices.Contains(v, want)
			})
			run2.stop(t)
		})
	}
}

// TestReadEventTimeJump: a poll whose first record would move the watermark
// past the bundle's cap (MaxBundleAdvance) after the bundle already read
// records — a log with a gap of an hour in event time — is held for the
// next bundle. It used to index recs[-1] and kill the job (found by the
// crash test's live scenario).
func TestReadEventTimeJump(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			brokers := be.brokers(t)
			topic := newTopic(t, brokers, 1)
			base := time.Now().Add(-3 * time.Hour).UnixMilli()
			var recs []rec
			var want []string
			for i := range 15 {
				ts := base + int64(i)
				if i >= 5 {
					ts += time.Hour.Milliseconds() // the second poll starts an hour later
				}
				v := fmt.Sprintf("%d|r%d", ts, i)
				recs = append(recs, rec{partition: 0, ts: ts, value: v})
				want = append(want, v)
			}
			produce(t, brokers, topic, recs)
			p, s := beam.NewPipelineWithRoot()
			lines := Read(s, ReadConfig{Brokers: brokers, Topic: topic, EndOffsets: true,
				MaxPollRecords: 5, MaxBundleAdvance: 20 * time.Second, CheckpointEvery: 5 * time.Second})
			passert.EqualsList(s, beam.ParDo(s, flattenLines, lines), want)
			done := make(chan error, 1)
			go func() { done <- ptest.Run(p) }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(120 * time.Second):
				t.Fatal("bounded read did not end")
			}
		})
	}
}
