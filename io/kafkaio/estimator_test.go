package kafkaio

import (
	"math"
	"strings"
	"testing"
	"time"
)

func testParams() params {
	c := ReadConfig{Brokers: []string{"x"}, Topic: "t", AllowedLateness: time.Minute, Margin: 10 * time.Second}
	d := c.withDefaults()
	return d.params()
}

const t0 = int64(1_700_000_040_000) // a minute start, Unix ms

func TestWatermarkRules(t *testing.T) {
	p := testParams() // delay 5 s, step 1 s, skew 1 min, idle 10 s
	now := t0 + 10*60_000
	tests := []struct {
		name   string
		ts     []int64 // record timestamps, offsets 0..
		wantWM []int64 // watermark applied to each record
		endWM  int64
	}{
		{"first record sees minimum", []int64{t0}, []int64{minWM}, t0 - 5000},
		{"delay and step", []int64{t0 + 7400, t0 + 8600}, []int64{minWM, t0 + 2000}, t0 + 3000},
		{"monotonic on older records", []int64{t0 + 20_000, t0, t0 + 1000}, []int64{minWM, t0 + 15_000, t0 + 15_000}, t0 + 15_000},
		{"future clamped to wall+skew", []int64{now + time.Hour.Milliseconds()}, []int64{minWM}, now + 60_000 - 5000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newPartState()
			s.begin(0, now)
			for i, ts := range tc.ts {
				if got := s.observe(&p, int64(i), ts, now); got != tc.wantWM[i] {
					t.Errorf("record %d: watermark %d, want %d", i, got, tc.wantWM[i])
				}
			}
			if s.WM != tc.endWM {
				t.Errorf("end watermark %d, want %d", s.WM, tc.endWM)
			}
		})
	}
}

func TestIdleRule(t *testing.T) {
	p := testParams()
	s := newPartState()
	start := t0 + 30*60_000
	s.begin(5, start)
	if s.idle(&p, start+9_999) {
		t.Fatal("idle before IdleTimeout")
	}
	if !s.idle(&p, start+10_000) {
		t.Fatal("no idle advance after IdleTimeout")
	}
	want := start + 10_000 - 5_000 - 60_000
	if s.WM != want {
		t.Fatalf("idle watermark %d, want %d", s.WM, want)
	}
	if len(s.Floors) != 1 || s.Floors[0] != (floor{Offset: 5, WM: want}) {
		t.Fatalf("floors %+v, want one at offset 5", s.Floors)
	}
	// Data far ahead moves it on; idle never moves it back.
	s.observe(&p, 5, start+600_000, start+20_000)
	before := s.WM
	s.idle(&p, start+40_000)
	if s.WM != before {
		t.Fatalf("idle moved the watermark from %d to %d", before, s.WM)
	}
}

// TestRestoreReproducesDecisions runs a stream through one estimator with idle
// gaps, commits, restores a second one from the commit metadata and replays
// from the committed offset: every record must see the same watermark, and the
// committed offset must not skip a record of a window still open.
func TestRestoreReproducesDecisions(t *testing.T) {
	p := testParams() // close after 60 s + 1 min + 10 s
	p.commitDelay, p.commitEach = 0, 0
	type rec struct{ ts, now int64 }
	var recs []rec
	wall := t0 + 60_000
	for i := range 400 {
		ts := t0 + int64(i)*1000 // one per event second
		if i%50 == 0 {
			ts -= 80_000 // late records keep older minutes open
		}
		recs = append(recs, rec{ts, wall})
		wall += 1000
		if i == 150 || i == 300 {
			wall += 30_000 // idle gaps, which advance the watermark by the wall clock
		}
	}
	orig := newPartState()
	orig.begin(0, recs[0].now)
	seen := make([]int64, len(recs))
	var commitAt int64 = -1
	var meta string
	for i, r := range recs {
		if i == 151 || i == 301 {
			if !orig.idle(&p, r.now) {
				t.Fatalf("no idle advance before record %d", i)
			}
		}
		seen[i] = orig.observe(&p, int64(i), r.ts, r.now)
		orig.dataSeen(r.now)
		if i == 320 {
			off, m, ok := orig.commitDue(&p, r.now, math.MaxInt64)
			if !ok {
				t.Fatal("no commit due")
			}
			commitAt, meta = off, m
		}
	}
	if commitAt <= 0 || commitAt > 320 {
		t.Fatalf("committed offset %d out of range", commitAt)
	}
	// Safety: every record at or after the watermark's open windows is re-read.
	wmAt321 := seen[321]
	for i := range commitAt {
		m := minuteStart(recs[i].ts)
		if m+p.closeAfter > wmAt321 {
			t.Fatalf("record %d (minute %d) is in an open window but before the commit %d", i, m, commitAt)
		}
	}
	re, err := restoreState(meta)
	if err != nil {
		t.Fatal(err)
	}
	re.begin(commitAt, recs[len(recs)-1].now+time.Hour.Milliseconds())
	closed := 0
	for i := commitAt; i < int64(len(recs)); i++ {
		got := re.observe(&p, i, recs[i].ts, recs[len(recs)-1].now)
		if m := minuteStart(recs[i].ts); m+p.closeAfter <= re.Closed {
			// Its window closed before the commit: final downstream without a
			// restart. Re-read, the record must be too late, not the start of
			// a fresh window holding only the records after the commit.
			closed++
			if got < re.Closed {
				t.Fatalf("replayed record %d of minute %d (closed at the commit, watermark %d) sees watermark %d",
					i, m, re.Closed, got)
			}
			continue
		}
		if got != seen[i] {
			t.Fatalf("replayed record %d sees watermark %d, original %d", i, got, seen[i])
		}
	}
	if closed == 0 {
		t.Fatal("no record of a closed minute after the commit: the test does not cover them")
	}
}

func TestCommitDelayAndBounds(t *testing.T) {
	p := testParams()
	s := newPartState()
	now := t0 + 10*60_000
	s.begin(0, now)
	for i := range 2000 {
		// One record per event minute: the open minutes stay bounded by the
		// watermark, not by the number of minutes seen.
		s.observe(&p, int64(i), t0+int64(i)*60_000, now+int64(i)*60_000)
	}
	if len(s.Minutes) > 4 {
		t.Fatalf("%d open minutes kept, want at most 4", len(s.Minutes))
	}
	if _, _, ok := s.commitDue(&p, now, math.MaxInt64); ok {
		t.Fatal("commit due before CommitDelay")
	}
	if _, _, ok := s.commitDue(&p, now+p.commitDelay-1, math.MaxInt64); ok {
		t.Fatal("commit due before CommitDelay")
	}
	off, meta, ok := s.commitDue(&p, now+p.commitDelay, math.MaxInt64)
	if !ok || off != s.Minutes[0].Offset || !strings.HasPrefix(meta, metaVersion+" ") {
		t.Fatalf("commit %d %q %v, want offset %d", off, meta, ok, s.Minutes[0].Offset)
	}
	for range 3 * maxPending {
		now += p.commitEach
		s.commitDue(&p, now-p.commitDelay*10, math.MaxInt64) // never due
	}
	if len(s.Pending) > maxPending {
		t.Fatalf("%d pending candidates", len(s.Pending))
	}
}

func TestMetadataErrors(t *testing.T) {
	for _, m := range []string{"", "x 1 2", metaVersion + " 1", metaVersion + " a 2", metaVersion + " 1 2 3",
		metaVersion + " 1 2 5:1 4:2", metaVersion + " 1 2 5:x", metaVersion + " 1 2 closed=x"} {
		if _, err := restoreState(m); err == nil {
			t.Errorf("restoreState(%q) accepted", m)
		}
	}
	s, err := restoreState(metaVersion + " 10 20 5:30 7:40 closed=50")
	if err != nil || s.WM != 10 || s.Max != 20 || len(s.Floors) != 2 || s.Closed != 50 {
		t.Fatalf("restoreState: %+v, %v", s, err)
	}
	b := encodeState(s)
	s2, err := decodeState(b)
	if err != nil || s2.WM != 10 || len(s2.Floors) != 2 {
		t.Fatalf("decodeState: %+v, %v", s2, err)
	}
	if _, err := decodeState([]byte("{")); err == nil {
		t.Fatal("decodeState accepted garbage")
	}
}

func TestTracker(t *testing.T) {
	tr := newTracker(Restriction{Start: 10, End: unboundedEnd})
	if !tr.TryClaim(int64(12)) || !tr.TryClaim(int64(20)) {
		t.Fatal("claims with gaps refused")
	}
	if tr.TryClaim(int64(20)) || tr.GetError() == nil {
		t.Fatal("repeated claim accepted")
	}
	tr = newTracker(Restriction{Start: 10, End: unboundedEnd})
	tr.TryClaim(int64(15))
	if _, r, _ := tr.TrySplit(0.5); r != nil {
		t.Fatal("runner split accepted")
	}
	if _, r, _ := tr.TrySplit(0); r != nil {
		t.Fatal("split at 0 without a checkpoint accepted")
	}
	tr.checkpoint = true
	p, r, err := tr.TrySplit(0)
	if err != nil || p != (Restriction{10, 16}) || r != (Restriction{16, unboundedEnd}) || !tr.IsDone() {
		t.Fatalf("checkpoint split: %v %v %v done=%v", p, r, err, tr.IsDone())
	}
	b := newTracker(Restriction{Start: 0, End: 5})
	b.TryClaim(int64(3))
	if b.TryClaim(int64(5)) || !b.IsDone() || b.GetError() != nil {
		t.Fatal("claim at End does not finish a bounded restriction")
	}
	rr, err := decodeRestriction(encodeRestriction(Restriction{3, unboundedEnd}))
	if err != nil || rr != (Restriction{3, unboundedEnd}) {
		t.Fatalf("restriction coder: %v %v", rr, err)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := ReadConfig{Brokers: []string{"h:1"}, Topic: "t"}
	tests := []struct {
		name string
		mod  func(*ReadConfig)
		want string
	}{
		{"valid", func(*ReadConfig) {}, ""},
		{"no brokers", func(c *ReadConfig) { c.Brokers = nil }, "no brokers"},
		{"no topic", func(c *ReadConfig) { c.Topic = "" }, "no topic"},
		{"bad start", func(c *ReadConfig) { c.StartOffset = "middle" }, "start offset"},
		{"dup partition", func(c *ReadConfig) { c.Partitions = []int32{1, 1} }, "listed twice"},
		{"negative delay", func(c *ReadConfig) { c.WatermarkDelay = -1 }, "WatermarkDelay is negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mod(&c)
			err := c.Validate()
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
	if err := (&WriteConfig{Brokers: []string{"h:1"}}).Validate(); err == nil {
		t.Fatal("WriteConfig without topic accepted")
	}
}

func TestUntimedRecordsLeaveTheWatermark(t *testing.T) {
	p := testParams()
	now := t0 + 10*60_000
	s := newPartState()
	s.begin(0, now)
	s.observe(&p, 0, t0, now)
	before, minutes := s.WM, len(s.Minutes)
	// A malformed line stamped with the wall clock, ten minutes ahead of the data.
	if got := s.observeUntimed(1); got != before {
		t.Errorf("watermark applied to the untimed record = %d, want %d", got, before)
	}
	if s.WM != before || len(s.Minutes) != minutes || s.Next != 2 {
		t.Errorf("after an untimed record: WM %d (want %d), %d open minutes (want %d), next %d (want 2)",
			s.WM, before, len(s.Minutes), minutes, s.Next)
	}
	// The next click is judged against the data's watermark, not the wall clock.
	if got := s.observe(&p, 2, t0+1000, now); got != before {
		t.Errorf("watermark applied to the next click = %d, want %d", got, before)
	}
}

func TestWouldExceed(t *testing.T) {
	p := testParams() // delay 5 s, step 1 s, skew 1 min
	now := t0 + 10*60_000
	s := newPartState()
	s.begin(0, now)
	s.observe(&p, 0, t0+30_000, now) // WM = t0 + 25 s
	limit := s.WM + 20_000
	tests := []struct {
		name string
		ts   int64
		want bool
	}{
		{"older record", t0, false},
		{"within the cap", t0 + 50_000, false},
		{"exactly at the cap", t0 + 50_999, false},
		{"past the cap", t0 + 51_000, true},
		{"far future, clamped to wall+skew and still past", now + 3_600_000, true},
	}
	for _, tc := range tests {
		if got := s.wouldExceed(&p, tc.ts, now, limit); got != tc.want {
			t.Errorf("%s: wouldExceed(%d) = %v, want %v", tc.name, tc.ts, got, tc.want)
		}
	}
}

func TestReadWatermarksMinimum(t *testing.T) {
	r := &readWatermarks{wm: map[int32]int64{}}
	if got := r.set(0, 100); got != 100 {
		t.Errorf("one partition: %d, want 100", got)
	}
	if got := r.set(1, 40); got != 40 {
		t.Errorf("a lagging partition holds the read: %d, want 40", got)
	}
	if got := r.set(0, 500); got != 40 {
		t.Errorf("the leader moving on: %d, want 40", got)
	}
	if got := r.set(1, 30); got != 40 {
		t.Errorf("a partition's watermark never goes back: %d, want 40", got)
	}
	r.done(1)
	if got := r.set(0, 500); got != 500 {
		t.Errorf("after the lagging partition finished: %d, want 500", got)
	}
}

// TestCommitWaitsForTheSlowestPartition: a minute stays open for the commit
// while another partition of the read still has it open, so a restart
// re-reads it everywhere (a top-N snapshot holds the ads of every partition).
func TestCommitWaitsForTheSlowestPartition(t *testing.T) {
	p := testParams() // closeAfter = 60 s + 1 min lateness + 10 s margin
	now := t0 + 60*60_000
	fresh := func(shared int64) *partState {
		s := newPartState()
		s.shared = shared
		s.begin(0, now)
		s.observe(&p, 0, t0+1000, now)      // minute t0, offset 0
		s.observe(&p, 1, t0+10*60_000, now) // ten minutes later: t0 closed by its own watermark
		return s
	}
	if c := fresh(math.MaxInt64).safe(&p); c.Offset != 1 {
		t.Errorf("alone: safe offset %d, want 1 (minute t0 closed)", c.Offset)
	}
	if c := fresh(t0 + 30_000).safe(&p); c.Offset != 0 || c.Closed >= t0+p.closeAfter {
		t.Errorf("a slower partition at t0+30s: safe offset %d closed %d, want 0 and below %d (minute t0 still open there)",
			c.Offset, c.Closed, t0+p.closeAfter)
	}
}

func TestCommitWaitsForTheGate(t *testing.T) {
	p := testParams()
	s := newPartState()
	now := t0 + 10*60_000
	s.begin(0, now)
	for i := range 30 {
		s.observe(&p, int64(i), t0+int64(i)*60_000, now)
	}
	c := s.safe(&p)
	if c.Need <= minWM || c.Offset == 0 {
		t.Fatalf("test needs a candidate past pruned minutes; need %d, offset %d", c.Need, c.Offset)
	}
	due := now + p.commitDelay
	if _, _, ok := s.commitDue(&p, now, minWM); ok {
		t.Fatal("commit due at once")
	}
	if _, _, ok := s.commitDue(&p, due, c.Need-1); ok {
		t.Fatal("commit due while the sinks have not passed the minutes it leaves behind")
	}
	off, _, ok := s.commitDue(&p, due, c.Need)
	if !ok || off != c.Offset {
		t.Fatalf("commit %d %v once the sinks passed %d; want offset %d", off, ok, c.Need, c.Offset)
	}
}

func TestGateProgressIsTheSlowestSink(t *testing.T) {
	g := NewGate(2)
	if got := g.progress(); got != minWM {
		t.Fatalf("progress %d before any sink reported, want none", got)
	}
	reportProgress(g.ID, "a", 5000)
	if got := g.progress(); got != minWM {
		t.Fatalf("progress %d with one of two sinks, want none", got)
	}
	reportProgress(g.ID, "b", 3000)
	reportProgress(g.ID, "b", 2000) // never backwards
	if got := g.progress(); got != 3000 {
		t.Fatalf("progress %d, want 3000 (the slower sink)", got)
	}
	if other := NewGate(2); other.ID == g.ID || other.progress() != minWM {
		t.Fatal("gates share progress")
	}
}
