package drills

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/io/kafkatopics"
	"github.com/adclick/adclick/testing/clickgen"
	"github.com/adclick/adclick/testing/e2e"
	"github.com/adclick/adclick/testing/reference"
	"github.com/adclick/adclick/testing/testenv"
)

// TestDrillOldLogRetention: a log whose clicks are three days old — older
// than the raw topic's retention (2 h, the least `adclick topics` accepts) —
// is published through the log watcher into a raw topic `adclick topics`
// created, and read only after the broker's next retention check has run:
// the streaming job's results still equal the recount, none deleted.
//
// The same lines published as the log watcher did before (the event time as
// a CreateTime record timestamp) into a control topic with the same
// retention are all deleted by that check: the control is how the drill
// knows a check ran, and what the raw topic's settings prevent (with the
// previous build the raw topic loses them too, and the drill fails). The
// broker checks every log.retention.check.interval.ms (Kafka's default 5
// minutes, which testing/testenv/kafka.sh keeps), so the drill waits up to 7
// minutes.
//
// The log has no malformed lines: the previous watcher stamped those with
// the wall clock, and a segment holding one is kept whole until it expires —
// here every partition's only segment would hold one; in a backfill of
// gigabytes, most 1 GiB segments hold none.
func TestDrillOldLogRetention(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	brokers := testenv.Kafka(t)
	bin := adclickBin(t)
	dir := t.TempDir()
	id := fmt.Sprintf("oldlog-%d-%d", os.Getpid(), time.Now().UnixNano())
	raw, res, dead, control := id+"-raw", id+"-results", id+"-dead", id+"-control"
	brokerList := strings.Join(brokers, ",")
	runOnce(t, bin, 2*time.Minute, "topics", "--kafka-brokers", brokerList, "--raw-topic", raw, "--results-topic", res,
		"--dead-letter-topic", dead, "--partitions", "2", "--raw-retention", kafkatopics.MinRawRetention.String())
	adm := e2e.NewAdmin(t, brokers)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := adm.Adm.DeleteTopics(ctx, raw, res, dead, control); err != nil {
			t.Logf("deleting the drill's topics: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := adm.Adm.CreateTopic(ctx, 2, -1, map[string]*string{"message.timestamp.type": kadm.StringPtr("CreateTime"),
		"retention.ms": kadm.StringPtr(strconv.FormatInt(kafkatopics.MinRawRetention.Milliseconds(), 10))}, control); err != nil {
		t.Fatal(err)
	}
	if err := kafkatopics.WaitVisible(ctx, adm.Adm, control); err != nil {
		t.Fatal(err)
	}

	n := 6000
	start := time.Now().Add(-72 * time.Hour).Truncate(time.Hour)
	lines, truth, err := clickgen.Lines(n, clickgen.Config{Seed: uint64(t0.UnixNano()), Ads: 100, Start: start,
		EventRate: float64(n) / (20 * 60), DupShare: 0.1, LateShare: 0.05, TooLateShare: 0.02})
	if err != nil {
		t.Fatal(err)
	}
	logPath, state := filepath.Join(dir, "clicks.log"), filepath.Join(dir, "positions.json")
	size := appendLines(t, logPath, lines)
	lw := e2e.NewProc(t, dir, "logwatcher", e2e.Binary(bin), "logwatcher", "--files", logPath, "--state", state,
		"--kafka-brokers", brokerList, "--raw-topic", raw)
	st := e2e.NewProc(t, dir, "stream", e2e.Binary(bin), "stream", "--kafka-brokers", brokerList, "--raw-topic", raw,
		"--results-topic", res, "--dead-letter-topic", dead, "--group", id+"-stream",
		"--idle-timeout", "3s", "--watermark-delay", "1s", "--window-sizes", windowFlag, "--top-n", strconv.Itoa(topN))
	t.Cleanup(func() {
		for _, p := range []*e2e.Proc{lw, st} {
			if p.Running() {
				p.Kill()
			}
			if t.Failed() {
				t.Logf("%s log (tail):\n%s", p.Name, e2e.Tail(p.LogPath, 10000))
			}
		}
	})
	lw.Start()
	clicks := publishPrevious(t, brokers, control, lines)
	for deadline := time.Now().Add(2 * time.Minute); !positionAt(state, size); time.Sleep(100 * time.Millisecond) {
		lw.Alive()
		if time.Now().After(deadline) {
			t.Fatalf("the log watcher did not publish the log in 2 min; state: %s", e2e.Tail(state, 500))
		}
	}
	lw.Interrupt(time.Minute)
	published := time.Now()
	t.Logf("%d lines of clicks from %s published %v after the start", n, start.Format(time.RFC3339), published.Sub(t0).Round(100*time.Millisecond))

	// The broker's retention check: it deletes the control topic's records.
	for deadline := time.Now().Add(7 * time.Minute); ; time.Sleep(5 * time.Second) {
		starts, ends := offsets(t, adm, control)
		if e2e.Sum(ends) != int64(clicks) {
			t.Fatalf("control topic ends %v, want %d records", ends, clicks)
		}
		if e2e.Sum(starts) == e2e.Sum(ends) {
			t.Logf("the broker's retention check deleted all %d clicks of the CreateTime control topic (event-time timestamps) %v after they were published",
				clicks, time.Since(published).Round(time.Second))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the broker deleted %d of the control topic's %d records in 7 min (starts %v): no retention check ran, and the drill shows nothing",
				e2e.Sum(starts), clicks, starts)
		}
	}
	starts, ends := offsets(t, adm, raw)
	if e2e.Sum(starts) != 0 || e2e.Sum(ends) != int64(n) {
		t.Fatalf("the broker deleted %d of the raw topic's %d records (start offsets %v, ends %v): they are lost before the job reads them",
			e2e.Sum(starts), e2e.Sum(ends), starts, ends)
	}

	tooLate := map[string]bool{}
	for _, id := range truth.TooLate {
		tooLate[id] = true
	}
	want := reference.Recount(lines, []int{1, 5, 15, 60}, topN, tooLate)
	if len(tooLate) == 0 || want.Dups == 0 {
		t.Fatalf("the log lacks too-late (%d) or duplicate (%d) lines", len(tooLate), want.Dups)
	}
	st.Start()
	rt := e2e.NewResultsTail(t, brokers, res)
	var matched time.Time
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); {
		st.Alive()
		rt.Poll(t, 500*time.Millisecond)
		if !e2e.ResultsEqual(rt.Results(), want) {
			matched = time.Time{}
		} else if matched.IsZero() {
			matched = time.Now()
		} else if time.Since(matched) > 5*time.Second {
			break // and nothing more came: no over-count
		}
	}
	st.Interrupt(time.Minute)
	got := rt.Results()
	t.Logf("results: %d counts, %d filtered counts, %d top lists (want %d, %d, %d)",
		len(got.Counts), len(got.Filtered), len(got.Top), len(want.Counts), len(want.Filtered), len(want.Top))
	reference.Compare(t, got, want)
	t.Logf("drill run time %v", time.Since(t0).Round(time.Second))
}

// publishPrevious publishes the clicks of lines as the log watcher did
// before the event time moved to a record header: the event time as the
// record timestamp, which a CreateTime topic keeps. It returns how many.
// Malformed lines are left out: the watcher stamped them with the wall
// clock, and a segment holding one is kept until that time is old enough.
func publishPrevious(t *testing.T, brokers []string, topic string, lines [][]byte) int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var p click.Parser
	var recs []*kgo.Record
	for _, l := range lines {
		if c, err := p.Parse(l); err == nil {
			recs = append(recs, &kgo.Record{Key: []byte(c.AdID), Value: l, Timestamp: time.UnixMilli(c.Time)})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return len(recs)
}

// offsets returns the start and end offsets of every partition of topic.
func offsets(t *testing.T, adm *e2e.Admin, topic string) (starts, ends map[int32]int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lo, err := adm.Adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = lo.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	starts = map[int32]int64{}
	lo.Each(func(o kadm.ListedOffset) { starts[o.Partition] = o.Offset })
	if ends, err = adm.Ends(ctx, topic); err != nil {
		t.Fatal(err)
	}
	return starts, ends
}
