package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/adclick/adclick/io/kafkaio"
	"github.com/adclick/adclick/testing/clickgen"
	"github.com/adclick/adclick/testing/e2e"
	"github.com/adclick/adclick/testing/reference"
	"github.com/adclick/adclick/testing/testenv"
)

// crashSetup is what both runs of TestCrash share: the log, its truth and
// the component settings.
type crashSetup struct {
	brokers     []string
	dir         string
	log         string
	size        int64
	lines       int
	windowSizes []int
	topN        int
	want        reference.Results
	adm         *e2e.Admin
	// live starts the streaming job and the DB writer with the log watcher,
	// so that they read while the log is published and are killed in the
	// middle of it (a crash during a live tail); otherwise the log is a backlog.
	live       bool
	partitions int32
}

// TestCrash is the crash test: the log watcher, the streaming job
// and the DB writer run as separate processes on a real Kafka over one
// generated click log (duplicates, late, too-late and malformed lines). The
// store after an uninterrupted run and the store after a run in which every
// component was SIGKILLed and restarted at random moments, at least three
// times each, must be equal, exactly, and equal to an independent recount of
// the log minus exactly the too-late clicks: every count, filtered count and
// top-N list.
//
// ADCLICK_CRASH_SEED=<n> repeats a kill schedule.
func TestCrash(t *testing.T) {
	// 70 minutes of event time ending about a minute ago, with the production
	// window sizes and list length: the log spans more than the longest
	// window, so a restart re-reads minutes that are closed for their counts
	// but still inside open 15- and 60-minute windows (a crash test over 6
	// minutes with windows {1, 5} hid a loss in the 60-minute lists). The log
	// is a backlog read in one go, and the idle rule closes the windows soon
	// after.
	n := 14000
	start := time.Now().Add(-71 * time.Minute).Truncate(time.Minute)
	lines, truth := genCrashLines(t, n, clickgen.Config{Seed: 44, Ads: 300, Start: start, EventRate: float64(n) / (70 * 60),
		DupShare: 0.1, LateShare: 0.05, TooLateShare: 0.02, MalformedShare: 0.02})
	crashTest(t, &crashSetup{partitions: 3}, start, lines, truth)
}

// TestCrashLive is a crash during a live tail: a log from hours ago (20 minutes of
// clicks and, 45 minutes later, a one-minute tail) read while the log
// watcher publishes it into a 4-partition raw topic; the streaming job and
// the DB writer are killed in the middle of it. Before the streaming
// redesign, minutes closed for their counts but inside open 15- and
// 60-minute windows went missing from those lists after a restart.
func TestCrashLive(t *testing.T) {
	start := time.Now().Add(-5 * time.Hour).Truncate(time.Hour)
	n1, n2 := 40000, 2000
	main, truth := genCrashLines(t, n1, clickgen.Config{Seed: 45, Ads: 300, Start: start, EventRate: float64(n1) / (20 * 60),
		DupShare: 0.1, LateShare: 0.05, TooLateShare: 0.02, MalformedShare: 0.02})
	tail, truth2 := genCrashLines(t, n2, clickgen.Config{Seed: 46, Ads: 300, Start: start.Add(65 * time.Minute), EventRate: float64(n2) / 60})
	truth.TooLate = append(truth.TooLate, truth2.TooLate...)
	crashTest(t, &crashSetup{live: true, partitions: 4}, start, append(main, tail...), truth)
}

func crashTest(t *testing.T, s *crashSetup, start time.Time, lines [][]byte, truth *clickgen.Truth) {
	t.Helper()
	brokers := testenv.Kafka(t)
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("ADCLICK_CRASH_SEED"); v != "" {
		x, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("ADCLICK_CRASH_SEED: %v", err)
		}
		seed = x
	}
	t.Logf("kill schedule seed %d (ADCLICK_CRASH_SEED=%d repeats it)", seed, seed)
	n := len(lines)
	dir := t.TempDir()
	s.brokers, s.dir, s.log, s.lines = brokers, dir, filepath.Join(dir, "clicks.log"), n
	s.windowSizes, s.topN, s.adm = []int{1, 5, 15, 60}, 100, e2e.NewAdmin(t, brokers)
	s.size = writeLog(t, s.log, lines)
	tooLate := map[string]bool{}
	for _, id := range truth.TooLate {
		tooLate[id] = true
	}
	s.want = reference.Recount(lines, s.windowSizes, s.topN, tooLate)
	if len(truth.TooLate) == 0 || s.want.Dups == 0 || s.want.Rejected == 0 {
		t.Fatalf("the log lacks too-late (%d), duplicate (%d) or malformed (%d) lines: the test would check less than it claims",
			len(truth.TooLate), s.want.Dups, s.want.Rejected)
	}
	t.Logf("log: %d lines, %d bytes; expected %d counts, %d filtered counts, %d top lists (%d valid unique, %d dups, %d malformed, %d too late)",
		n, s.size, len(s.want.Counts), len(s.want.Filtered), len(s.want.Top), s.want.Valid, s.want.Dups, s.want.Rejected, len(truth.TooLate))

	// Every minute a stored row can have: too-late clicks are up to an hour
	// behind, top lists of 60-minute windows end up to 59 minutes after the log.
	from := start.Add(-2 * time.Hour).Truncate(time.Hour).Unix()
	// (An hour up from now, rounded down, was only the current hour's end: a
	// run started at hh:59 missed its last top lists.)
	to := time.Now().Add(2 * time.Hour).Truncate(time.Hour).Unix()

	t0 := time.Now()
	calm := s.run(t, "calm", nil, from, to)
	t.Logf("uninterrupted run: %v", time.Since(t0).Round(time.Second))
	t1 := time.Now()
	chaos := s.run(t, "chaos", rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), from, to)
	t.Logf("chaos run: %v", time.Since(t1).Round(time.Second))

	t.Run("uninterrupted equals recount minus too-late", func(t *testing.T) { reference.Compare(t, calm, s.want) })
	t.Run("chaos equals uninterrupted", func(t *testing.T) { reference.Compare(t, chaos, calm) })
	t.Run("chaos equals recount minus too-late", func(t *testing.T) { reference.Compare(t, chaos, s.want) })
}

// kill is one scheduled SIGKILL.
type kill struct {
	at   time.Duration
	comp *e2e.Proc
}

// run runs the three components on fresh topics, groups and store over the
// log until the stored results are stable, then stops them with SIGINT and
// reads the store. With rng, it SIGKILLs and restarts each component at
// random moments, at least three times each.
func (s *crashSetup) run(t *testing.T, name string, rng *rand.Rand, from, to int64) reference.Results {
	id := fmt.Sprintf("crash-%d-%d-%s", os.Getpid(), time.Now().UnixNano(), name)
	raw, res, dead := id+"-raw", id+"-results", id+"-dead"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	for topic, parts := range map[string]int32{raw: s.partitions, res: 2, dead: 2} {
		if err := kafkaio.EnsureTopic(ctx, s.brokers, topic, parts); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	dir := filepath.Join(s.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	state, pebbleDir := filepath.Join(dir, "positions.json"), filepath.Join(dir, "pebble")
	brokers := strings.Join(s.brokers, ",")
	var ws []string
	for _, w := range s.windowSizes {
		ws = append(ws, strconv.Itoa(w))
	}
	windows := strings.Join(ws, ",")
	// --max-in-flight 4 makes the log watcher wait for the broker every few lines, so
	// publishing the log takes long enough to be killed in the middle of it.
	lw := e2e.NewProc(t, dir, "logwatcher", crashChild, "logwatcher", "--files", s.log, "--state", state,
		"--kafka-brokers", brokers, "--raw-topic", raw, "--max-in-flight", "4")
	st := e2e.NewProc(t, dir, "stream", crashChild, "stream", "--kafka-brokers", brokers, "--raw-topic", raw,
		"--results-topic", res, "--dead-letter-topic", dead, "--group", id+"-stream",
		"--idle-timeout", "3s", "--watermark-delay", "1s", "--window-sizes", windows, "--top-n", strconv.Itoa(s.topN))
	dw := e2e.NewProc(t, dir, "dbwriter", crashChild, "dbwriter", "--kind", "results", "--kafka-brokers", brokers,
		"--results-topic", res, "--group", id+"-dbwriter", "--store", "pebble", "--pebble-dir", pebbleDir)
	all := []*e2e.Proc{lw, st, dw}
	t.Cleanup(func() {
		for _, c := range all {
			if c.Running() {
				c.Kill()
			}
		}
		if t.Failed() {
			for _, c := range all {
				t.Logf("%s %s log (tail):\n%s", name, c.Name, e2e.Tail(c.LogPath, 400000))
			}
		}
	})
	kills := map[string]int{}
	restart := func(c *e2e.Proc, why string) {
		c.Alive()
		c.Kill()
		kills[c.Name]++
		pause := time.Duration(0)
		if rng != nil {
			pause = time.Duration(rng.IntN(1500)) * time.Millisecond
		}
		t.Logf("%s: SIGKILL %s #%d (%s), restart after %v", name, c.Name, kills[c.Name], why, pause)
		time.Sleep(pause)
		c.Start()
	}

	// Phase 1: the log watcher publishes the whole log. The streaming job
	// starts only once the raw topic holds every line, in both runs: a gap of
	// more than the idle timeout in the middle of the backlog would advance the
	// watermark with the wall clock (the idle rule), and later late clicks of
	// the hours-old log would become too late in one run and not in the other.
	t0 := time.Now()
	lw.Start()
	if s.live {
		st.Start()
		dw.Start()
	}
	if rng != nil && !s.live {
		var fracs []float64
		for range 3 {
			fracs = append(fracs, 0.05+0.85*rng.Float64())
		}
		sort.Float64s(fracs)
		t.Logf("%s: log watcher kills when the raw topic holds %.2f of the lines", name, fracs)
		for _, f := range fracs {
			target := int64(f * float64(s.lines))
			deadline := time.Now().Add(60 * time.Second)
			for {
				ends, err := s.adm.Ends(context.Background(), raw)
				if err == nil && e2e.Sum(ends) >= target {
					restart(lw, fmt.Sprintf("publishing: raw topic at %d records", e2e.Sum(ends)))
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: raw topic never reached %d records", name, target)
				}
				lw.Alive()
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	waitPublished := func() {
		for deadline := time.Now().Add(90 * time.Second); !positionAt(state, s.size); time.Sleep(100 * time.Millisecond) {
			lw.Alive()
			if time.Now().After(deadline) {
				t.Fatalf("%s: the log watcher did not persist the end of the log in 90 s; state: %s", name, e2e.Tail(state, 500))
			}
		}
		rawEnds, err := s.adm.Ends(context.Background(), raw)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: log published in %v: %d raw records for %d lines", name, time.Since(t0).Round(100*time.Millisecond), e2e.Sum(rawEnds), s.lines)
		if rng == nil && e2e.Sum(rawEnds) != int64(s.lines) {
			t.Errorf("%s: %d raw records for %d lines without a restart", name, e2e.Sum(rawEnds), s.lines)
		}
	}
	if !s.live {
		waitPublished()
	}

	// Phase 2: the streaming job and the DB writer; with rng, kills of all
	// three at random moments of the next 45 seconds.
	t1 := time.Now()
	if s.live {
		t1 = t0 // the kills below count from the log watcher's start
	} else {
		st.Start()
		dw.Start()
	}
	if rng != nil {
		var sched []kill
		for _, k := range []struct {
			c *e2e.Proc
			n int
		}{{st, 3}, {dw, 3}, {lw, 1 + rng.IntN(2)}} {
			if s.live && k.c == lw {
				// Live: a log watcher down for longer than the stream's idle
				// timeout would let the idle rule close the hours-old log's
				// windows in the middle of it (a kill of the job alone
				// and the DB writer).
				continue
			}
			// n moments in [2 s, 47 s), at least 6 s apart: each restarted
			// process gets going before it is killed again.
			for {
				var ats []time.Duration
				for range k.n {
					ats = append(ats, 2*time.Second+time.Duration(rng.Int64N(int64(45*time.Second))))
				}
				sort.Slice(ats, func(i, j int) bool { return ats[i] < ats[j] })
				ok := true
				for i := 1; i < len(ats); i++ {
					ok = ok && ats[i]-ats[i-1] >= 6*time.Second
				}
				if ok {
					for _, at := range ats {
						sched = append(sched, kill{at, k.c})
					}
					break
				}
			}
		}
		sort.Slice(sched, func(i, j int) bool { return sched[i].at < sched[j].at })
		var desc []string
		for _, k := range sched {
			desc = append(desc, fmt.Sprintf("%s@%v", k.comp.Name, k.at.Round(10*time.Millisecond)))
		}
		t.Logf("%s: kill schedule after the stream started: %s", name, strings.Join(desc, " "))
		for _, k := range sched {
			for time.Since(t1) < k.at {
				for _, c := range all {
					c.Alive()
				}
				time.Sleep(min(100*time.Millisecond, k.at-time.Since(t1)))
			}
			restart(k.comp, fmt.Sprintf("%v after the stream started", time.Since(t1).Round(10*time.Millisecond)))
		}
		for _, c := range all {
			if kills[c.Name] < 3 && !(s.live && c == lw) {
				t.Fatalf("%s: %s killed %d times, want at least 3", name, c.Name, kills[c.Name])
			}
		}
	}

	if s.live {
		waitPublished()
	}

	// Settle: the results topic quiet, the DB writer's committed offsets at
	// its end and the values on the topic (last per key, what the writer
	// stores) equal to the recount. If they never become equal, stop when
	// quiet for long anyway and let the store comparison report the keys.
	rt := e2e.NewResultsTail(t, s.brokers, res)
	var lastEnds map[int32]int64
	quietSince, matched := time.Now(), false
	deadline := time.Now().Add(150 * time.Second)
	for {
		for _, c := range all {
			c.Alive()
		}
		rt.Poll(t, 500*time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ends, err1 := s.adm.Ends(ctx, res)
		committed, err2 := s.adm.Committed(ctx, id+"-dbwriter", res)
		cancel()
		if err1 != nil || err2 != nil {
			t.Logf("%s: settle: %v %v", name, err1, err2)
			continue
		}
		if fmt.Sprint(ends) != fmt.Sprint(lastEnds) {
			lastEnds, quietSince = ends, time.Now()
		}
		caughtUp := e2e.Sum(ends) > 0
		for p, e := range ends {
			caughtUp = caughtUp && committed[p] == e
		}
		matched = e2e.ResultsEqual(rt.Results(), s.want)
		quiet := time.Since(quietSince)
		if caughtUp && (matched && quiet >= 8*time.Second || quiet >= 40*time.Second) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: results did not settle in 150 s (quiet %v, db writer caught up %v, topic equals recount %v)",
				name, quiet.Round(time.Second), caughtUp, matched)
			break
		}
	}
	t.Logf("%s: settled %v after the stream started: %d result records, topic values equal the recount: %v",
		name, time.Since(t1).Round(100*time.Millisecond), e2e.Sum(lastEnds), matched)
	if ends, err := s.adm.Ends(context.Background(), raw); err == nil {
		c, _ := s.adm.Committed(context.Background(), id+"-stream", raw)
		t.Logf("%s: raw topic ends %v, stream group committed %v (windows still open hold commits back)", name, ends, c)
	}

	for _, c := range []*e2e.Proc{lw, st, dw} {
		c.Interrupt(60 * time.Second)
	}
	deadLetters := countTopic(t, s.adm, dead)
	switch {
	case rng == nil && deadLetters != int64(s.want.Rejected):
		t.Errorf("%s: %d dead letters, want %d", name, deadLetters, s.want.Rejected)
	case deadLetters < int64(s.want.Rejected):
		t.Errorf("%s: %d dead letters, want at least %d", name, deadLetters, s.want.Rejected)
	}
	got := readPebble(t, pebbleDir, from, to, s.windowSizes)
	t.Logf("%s: store holds %d counts, %d filtered counts, %d top lists; %d dead letters; restarts %v",
		name, len(got.Counts), len(got.Filtered), len(got.Top), deadLetters, kills)
	return got
}

func countTopic(t *testing.T, adm *e2e.Admin, topic string) int64 {
	t.Helper()
	ends, err := adm.Ends(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	return e2e.Sum(ends)
}
