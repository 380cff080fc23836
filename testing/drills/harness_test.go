package drills

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/adclick/adclick/io/store/backend"
	"github.com/adclick/adclick/testing/clickgen"
	"github.com/adclick/adclick/testing/e2e"
	"github.com/adclick/adclick/testing/reference"
)

// Production settings where they matter for what the drills check: the
// window sizes and list length of every top-N list.
const (
	windowFlag = "1,5,15,60"
	topN       = 100
)

// drill describes one fault drill.
type drill struct {
	brokers []string // the Kafka the processes use
	// cassandra, when set, is the store (a fresh keyspace on it);
	// otherwise an embedded Pebble directory.
	cassandra string
	// tail is how long the live part of the log is written, at tailRate
	// lines a second.
	tail     time.Duration
	tailRate float64
	// faults runs while the live tail is written, from its start; it may
	// outlast it.
	faults func(r *drillRun)
	// stateDir and pebbleDir, when set, hold the log watcher's state file
	// and the Pebble store (on a small filesystem, say).
	stateDir, pebbleDir string
}

// drillRun is a drill in progress: what faults may act on.
type drillRun struct {
	t          *testing.T
	rng        *rand.Rand
	lw, st, dw *e2e.Proc
	procs      []*e2e.Proc
	tailStart  time.Time
}

// aliveAll fails the test when a component died on its own.
func (r *drillRun) aliveAll() {
	r.t.Helper()
	for _, p := range r.procs {
		p.Alive()
	}
}

// sleep waits d, checking every component stays up, except those in down
// (killed on purpose).
func (r *drillRun) sleep(d time.Duration, down ...*e2e.Proc) {
	r.t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(min(100*time.Millisecond, time.Until(end))) {
		for _, p := range r.procs {
			isDown := false
			for _, q := range down {
				isDown = isDown || p == q
			}
			if !isDown {
				p.Alive()
			}
		}
	}
}

// drillSeed returns the fault schedule's seed; ADCLICK_DRILL_SEED repeats one.
func drillSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("ADCLICK_DRILL_SEED"); v != "" {
		x, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("ADCLICK_DRILL_SEED: %v", err)
		}
		seed = x
	}
	t.Logf("fault schedule seed %d (ADCLICK_DRILL_SEED=%d repeats it)", seed, seed)
	return seed
}

// runDrill runs a click log through logwatcher → raw topic → stream →
// results topic → dbwriter → store while d.faults acts, waits until the
// stored results settle, and compares them with a recount of the log minus
// the too-late clicks.
//
// The log is a backlog from hours ago (20 minutes of clicks with duplicate,
// late, too-late and malformed lines) followed by a live tail written at a
// steady rate with event times at the wall clock: the log spans hours of
// event time, so 60-minute windows stay open across every fault. The faults
// start once the backlog is published: a log watcher down for longer than
// the stream's idle timeout in the middle of the hours-old backlog would
// let the idle rule move the watermark to the clock and make the rest of
// the backlog too late, which is the idle rule's contract, not a fault.
func runDrill(t *testing.T, d drill) {
	t.Helper()
	t0 := time.Now()
	windowSizes := []int{1, 5, 15, 60} // windowFlag
	bin := adclickBin(t)
	seed := drillSeed(t)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	dir := t.TempDir()
	logPath, state, pebbleDir := filepath.Join(dir, "clicks.log"), filepath.Join(dir, "positions.json"), filepath.Join(dir, "pebble")
	if d.stateDir != "" {
		state = filepath.Join(d.stateDir, "positions.json")
	}
	if d.pebbleDir != "" {
		pebbleDir = d.pebbleDir
	}

	start := time.Now().Add(-4 * time.Hour).Truncate(time.Hour)
	n1 := 12000
	backlog, truth, err := clickgen.Lines(n1, clickgen.Config{Seed: seed, Ads: 300, Start: start, EventRate: float64(n1) / (20 * 60),
		DupShare: 0.1, LateShare: 0.05, TooLateShare: 0.02, MalformedShare: 0.02})
	if err != nil {
		t.Fatal(err)
	}
	backlogSize := appendLines(t, logPath, backlog)

	id := fmt.Sprintf("drill-%d-%d", os.Getpid(), time.Now().UnixNano())
	raw, res, dead := id+"-raw", id+"-results", id+"-dead"
	brokers := strings.Join(d.brokers, ",")
	runOnce(t, bin, 2*time.Minute, "topics", "--kafka-brokers", brokers, "--raw-topic", raw, "--results-topic", res,
		"--dead-letter-topic", dead, "--partitions", "4")
	storeArgs := []string{"--store", "pebble", "--pebble-dir", pebbleDir}
	cfg := backend.Config{Backend: backend.Pebble, Path: pebbleDir}
	if d.cassandra != "" {
		ks := "drill_" + strconv.FormatUint(rng.Uint64()%1e12, 10)
		runOnce(t, bin, 3*time.Minute, "migrate", "--cassandra-hosts", d.cassandra, "--keyspace", ks)
		storeArgs = []string{"--store", "cassandra", "--cassandra-hosts", d.cassandra, "--keyspace", ks}
		cfg = backend.Config{Backend: backend.Cassandra, Hosts: []string{d.cassandra}, Keyspace: ks}
	}

	// The stream's idle timeout and watermark delay are short so that the
	// windows close soon after the log ends, as in the crash tests.
	r := &drillRun{t: t, rng: rng}
	r.lw = e2e.NewProc(t, dir, "logwatcher", e2e.Binary(bin), "logwatcher", "--files", logPath, "--state", state,
		"--kafka-brokers", brokers, "--raw-topic", raw)
	r.st = e2e.NewProc(t, dir, "stream", e2e.Binary(bin), "stream", "--kafka-brokers", brokers, "--raw-topic", raw,
		"--results-topic", res, "--dead-letter-topic", dead, "--group", id+"-stream",
		"--idle-timeout", "3s", "--watermark-delay", "1s", "--window-sizes", windowFlag, "--top-n", strconv.Itoa(topN))
	r.dw = e2e.NewProc(t, dir, "dbwriter", e2e.Binary(bin), append([]string{"dbwriter", "--kind", "results", "--kafka-brokers", brokers,
		"--results-topic", res, "--group", id + "-dbwriter"}, storeArgs...)...)
	r.procs = []*e2e.Proc{r.lw, r.st, r.dw}
	t.Cleanup(func() {
		for _, p := range r.procs {
			if p.Running() {
				p.Kill()
			}
		}
		if t.Failed() {
			for _, p := range r.procs {
				t.Logf("%s log (tail):\n%s", p.Name, e2e.Tail(p.LogPath, 20000))
			}
		}
	})
	adm := e2e.NewAdmin(t, d.brokers)
	for _, p := range r.procs {
		p.Start()
	}
	for deadline := time.Now().Add(120 * time.Second); !positionAt(state, backlogSize); time.Sleep(100 * time.Millisecond) {
		r.aliveAll()
		if time.Now().After(deadline) {
			t.Fatalf("the log watcher did not publish the backlog in 120 s; state: %s", e2e.Tail(state, 500))
		}
	}
	t.Logf("backlog of %d lines published %v after the start", n1, time.Since(t0).Round(100*time.Millisecond))

	// The live tail: generated now, so that its event times follow the clock;
	// line i is appended at i/tailRate after the tail's start. No too-late
	// lines: a line 15+ minutes behind that reaches a partition before the
	// job saw the tail's first minute would not be too late yet.
	r.tailStart = time.Now()
	n2 := int(d.tailRate * d.tail.Seconds())
	tailLines, truth2, err := clickgen.Lines(n2, clickgen.Config{Seed: seed + 1, Ads: 300, Start: r.tailStart, EventRate: d.tailRate,
		DupShare: 0.05, LateShare: 0.05, MalformedShare: 0.01})
	if err != nil {
		t.Fatal(err)
	}
	lines := append(append([][]byte{}, backlog...), tailLines...)
	tooLate := map[string]bool{}
	for _, id := range append(truth.TooLate, truth2.TooLate...) {
		tooLate[id] = true
	}
	want := reference.Recount(lines, windowSizes, topN, tooLate)
	if len(tooLate) == 0 || want.Dups == 0 || want.Rejected == 0 {
		t.Fatalf("the log lacks too-late (%d), duplicate (%d) or malformed (%d) lines: the drill would check less than it claims",
			len(tooLate), want.Dups, want.Rejected)
	}
	t.Logf("log: %d backlog + %d live lines; expected %d counts, %d filtered counts, %d top lists (%d valid unique, %d dups, %d malformed, %d too late)",
		n1, n2, len(want.Counts), len(want.Filtered), len(want.Top), want.Valid, want.Dups, want.Rejected, len(tooLate))
	if os.Getenv("ADCLICK_DRILL_BREAK_TRUTH") == "1" {
		// Shows that the comparison can fail: one expected count off by one.
		keys := slices.Sorted(maps.Keys(want.Counts))
		want.Counts[keys[len(keys)/2]]++
		t.Logf("ADCLICK_DRILL_BREAK_TRUTH=1: expecting one more click for %s: the drill must fail", keys[len(keys)/2])
	}

	ctx, stopTail := context.WithCancel(context.Background())
	tailDone := make(chan error, 1)
	go func() { tailDone <- writeTail(ctx, logPath, tailLines, r.tailStart, d.tailRate) }()
	defer stopTail()
	d.faults(r)
	t.Logf("faults done %v after the tail started", time.Since(r.tailStart).Round(100*time.Millisecond))
	for waiting := true; waiting; {
		select {
		case err := <-tailDone:
			if err != nil {
				t.Fatal(err)
			}
			waiting = false
		case <-time.After(100 * time.Millisecond):
			r.aliveAll()
		}
	}
	size := fileSize(t, logPath)
	for deadline := time.Now().Add(120 * time.Second); !positionAt(state, size); time.Sleep(100 * time.Millisecond) {
		r.aliveAll()
		if time.Now().After(deadline) {
			t.Fatalf("the log watcher did not persist the end of the log in 120 s; state: %s", e2e.Tail(state, 500))
		}
	}

	// Settle: the results topic quiet, the DB writer's committed offsets at
	// its end and the values on the topic (last per key, what the writer
	// stores) equal to the recount. If they never become equal, stop when
	// quiet for long anyway and let the store comparison report the keys.
	// The tail's last clicks (within the watermark delay of its end) are
	// emitted once the watermark passes them. With no more input that is the
	// idle rule's doing, which keeps the watermark the reader's maximum skew
	// (1 min, kafkaio's default) behind the clock: the results are complete
	// only about a minute after the tail's end, not before.
	tailEnd := r.tailStart.Add(d.tail)
	closed := tailEnd.Add(time.Minute + 20*time.Second)
	var firstMatch time.Duration
	rt := e2e.NewResultsTail(t, d.brokers, res)
	var lastEnds map[int32]int64
	quietSince, matched, caughtUp := time.Now(), false, false
	settleStart := time.Now()
	for deadline := time.Now().Add(180 * time.Second); ; {
		r.aliveAll()
		rt.Poll(t, 500*time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ends, err1 := adm.Ends(ctx, res)
		committed, err2 := adm.Committed(ctx, id+"-dbwriter", res)
		cancel()
		if err1 != nil || err2 != nil {
			t.Logf("settle: %v %v", err1, err2)
			continue
		}
		if fmt.Sprint(ends) != fmt.Sprint(lastEnds) {
			lastEnds, quietSince = ends, time.Now()
		}
		caughtUp = e2e.Sum(ends) > 0
		for p, e := range ends {
			caughtUp = caughtUp && committed[p] == e
		}
		matched = e2e.ResultsEqual(rt.Results(), want)
		if matched && firstMatch == 0 {
			firstMatch = time.Since(tailEnd)
		}
		quiet := time.Since(quietSince)
		if caughtUp && time.Now().After(closed) && (matched && quiet >= 8*time.Second || quiet >= 40*time.Second) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("results did not settle in 180 s (quiet %v, db writer caught up %v, topic equals recount %v)",
				quiet.Round(time.Second), caughtUp, matched)
			break
		}
	}
	t.Logf("settled in %v: %d result records, db writer caught up %v, topic values equal the recount %v (first %v after the tail's end)",
		time.Since(settleStart).Round(100*time.Millisecond), e2e.Sum(lastEnds), caughtUp, matched, firstMatch.Round(100*time.Millisecond))

	if st := rt.Stale(); len(st) > 0 {
		slices.Sort(st)
		t.Logf("results topic: %d count keys end on a smaller value than an earlier record of theirs (an update written out of order?), e.g. %s",
			len(st), strings.Join(st[:min(5, len(st))], "; "))
	}
	if rawEnds, err := adm.Ends(context.Background(), raw); err == nil {
		c, _ := adm.Committed(context.Background(), id+"-stream", raw)
		recs, missing := rawCoverage(t, d.brokers, raw, rawEnds, lines)
		t.Logf("raw topic: %d records for %d lines, %d lines on none; ends %v, stream group committed %v",
			recs, len(lines), missing, rawEnds, c)
	}
	for _, p := range r.procs {
		p.Interrupt(60 * time.Second)
	}
	deadEnds, err := adm.Ends(context.Background(), dead)
	if err != nil {
		t.Fatal(err)
	}
	if e2e.Sum(deadEnds) < int64(want.Rejected) {
		t.Errorf("%d dead letters, want at least %d (one per malformed line)", e2e.Sum(deadEnds), want.Rejected)
	}

	// Every minute a stored row can have: too-late clicks are up to an hour
	// behind the backlog, top lists of 60-minute windows end up to 59 minutes
	// after the log.
	from := start.Add(-2 * time.Hour).Unix()
	to := time.Now().Add(2 * time.Hour).Truncate(time.Hour).Unix()
	st, err := backend.Open(context.Background(), cfg, prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("opening the store: %v", err)
	}
	got := e2e.ReadStore(t, st, from, to, windowSizes)
	if err := st.Close(); err != nil {
		t.Errorf("closing the store: %v", err)
	}
	t.Logf("store holds %d counts, %d filtered counts, %d top lists; %d dead letters; starts: logwatcher %d, stream %d, dbwriter %d",
		len(got.Counts), len(got.Filtered), len(got.Top), e2e.Sum(deadEnds), r.lw.Starts(), r.st.Starts(), r.dw.Starts())
	reference.Compare(t, got, want)
	t.Logf("drill run time %v", time.Since(t0).Round(time.Second))
}

// appendLines appends lines to the log and returns its size.
func appendLines(t *testing.T, path string, lines [][]byte) int64 {
	t.Helper()
	var b bytes.Buffer
	for _, l := range lines {
		b.Write(l)
		b.WriteByte('\n')
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return fileSize(t, path)
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// writeTail appends line i of lines at start + i/rate, in whole lines.
func writeTail(ctx context.Context, path string, lines [][]byte, start time.Time, rate float64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	next := 0
	for next < len(lines) {
		due := min(len(lines), int(time.Since(start).Seconds()*rate)+1)
		var b bytes.Buffer
		for ; next < due; next++ {
			b.Write(lines[next])
			b.WriteByte('\n')
		}
		if b.Len() > 0 {
			if _, err := f.Write(b.Bytes()); err != nil {
				return fmt.Errorf("appending the live tail: %w", err)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return f.Close()
}
