package kafkaio

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
)

// minWM is the watermark of a partition that has seen nothing: Beam's minimum
// timestamp, in Unix ms.
const minWM = int64(mtime.MinTimestamp)

// Bounds that keep a partition's state small whatever the data does. Exceeding
// one only makes the reader more conservative (an earlier commit) or, for
// floors, costs exactness of a replay's late decisions; see the package doc.
const (
	maxMinutes = 512 // open event minutes tracked
	maxFloors  = 64  // idle watermark floors kept for the commit metadata
	maxPending = 64  // commit candidates waiting for CommitDelay
)

// params are the estimator's settings in Unix ms, taken from ReadConfig.
type params struct {
	delay, skew, idle, step int64
	closeAfter              int64 // window span (≥ 60 s) + allowed lateness + margin
	commitDelay, commitEach int64
}

func (c *ReadConfig) params() params {
	return params{
		delay:       c.WatermarkDelay.Milliseconds(),
		skew:        c.MaxSkew.Milliseconds(),
		idle:        c.IdleTimeout.Milliseconds(),
		step:        c.WatermarkStep.Milliseconds(),
		closeAfter:  (max(c.WindowSpan, time.Minute) + c.AllowedLateness + c.Margin).Milliseconds(),
		commitDelay: c.CommitDelay.Milliseconds(),
		commitEach:  c.CommitInterval.Milliseconds(),
	}
}

// minuteMark remembers, for one event minute, the first (smallest) offset read
// with that minute and the estimator as it was just before that record.
type minuteMark struct {
	Minute int64 // window start, Unix ms
	Offset int64
	WM     int64
	Max    int64
}

// floor is an idle advance: from Offset on, the watermark is at least WM. It is
// recorded because it came from the wall clock, not from the data, and a replay
// must apply it at the same offset to reach the same decisions.
type floor struct {
	Offset int64
	WM     int64
}

// candidate is a commit position computed at wall time At; it is committed only
// once At is CommitDelay old.
type candidate struct {
	At     int64
	Offset int64
	WM     int64
	Max    int64
	Closed int64 // the watermark the candidate's open minutes were judged against
	// Need: the gated sinks must have passed this before the candidate is
	// committed (partState.Final when it was computed).
	Need int64
}

// partState is one partition's watermark estimator and commit bookkeeping. It
// travels with the restriction as the SDF's watermark estimator state, so it
// survives self-checkpoints; across restarts its essential part (WM, Max,
// floors) travels in the committed offset's metadata.
type partState struct {
	WM   int64 // current watermark, Unix ms, monotonic
	Max  int64 // largest (clamped) record timestamp seen
	Next int64 // next offset to read
	// Closed: a minute m with m + closeAfter <= Closed was closed when the
	// restart point was committed; its windows were complete downstream, so
	// its records re-read after the restart point are judged too late (they
	// would otherwise start the window again from a part of its records).
	Closed int64

	LastData      int64 // wall ms of the last poll that returned records (0: not started)
	LastCandidate int64 // wall ms of the last commit candidate
	Committed     int64 // offset last committed (-1: none)

	Minutes []minuteMark // ascending by Minute
	Floors  []floor      // ascending by Offset
	Pending []candidate  // ascending by At

	nextFloor int // Floors[:nextFloor] are applied

	// Final is the latest end (minute + closeAfter) of the minutes pruned as
	// closed: their records lie before any later candidate's offset and are
	// not re-read after a restart, so their results must be written before
	// such a candidate is committed (Gate).
	Final int64

	// shared is the smallest watermark of the read's partitions in this
	// process (readWatermarks), as last seen; a minute counts as closed for
	// the commit only when it is closed there too. Top-N snapshots hold every
	// ad of a minute, from every partition: a partition that committed past a
	// minute its neighbours still had open made a restarted job rebuild that
	// minute's snapshot from the other partitions' ads only.
	shared int64
}

func newPartState() *partState {
	return &partState{WM: minWM, Max: minWM, Closed: minWM, Final: minWM, Committed: -1, shared: math.MaxInt64}
}

// quant rounds a watermark down to the step, so a batch of records shares one
// watermark for up to a step of event time and the batch boundaries follow from
// the data alone.
func (p *params) quant(ms int64) int64 {
	if p.step <= 1 || ms <= minWM {
		return ms
	}
	q := ms - ms%p.step
	if ms%p.step < 0 {
		q -= p.step
	}
	return q
}

func minuteStart(ms int64) int64 {
	m := ms - ms%60000
	if ms%60000 < 0 {
		m -= 60000
	}
	return m
}

// begin prepares for reading from offset start at wall time now.
func (s *partState) begin(start, now int64) {
	if start > s.Next {
		s.Next = start
	}
	if s.LastData == 0 {
		s.LastData = now
	}
}

// observe accounts for the record at offset off with event time ts (ms),
// read at wall time now, and returns the watermark that applies to it: the
// partition watermark before the record was seen.
func (s *partState) observe(p *params, off, ts, now int64) int64 {
	for s.nextFloor < len(s.Floors) && s.Floors[s.nextFloor].Offset <= off {
		if f := s.Floors[s.nextFloor].WM; f > s.WM {
			s.WM = f
		}
		s.nextFloor++
	}
	w := s.WM
	if lim := now + p.skew; ts > lim {
		ts = lim // a bogus future timestamp must not drag the watermark along
	}
	m := minuteStart(ts)
	if m+p.closeAfter <= s.Closed {
		// Re-read after a restart, in a window closed before the restart
		// point: its count is final downstream, without this record in a
		// fresh window. Judge the record by the closing watermark (too late).
		w = max(w, s.Closed)
	}
	if m+p.closeAfter > w {
		s.mark(m, off, w)
	}
	if ts > s.Max {
		s.Max = ts
		if nw := p.quant(s.Max - p.delay); nw > s.WM {
			s.WM = nw
			s.prune(p)
		}
	}
	s.Next = off + 1
	return w
}

// wouldExceed says whether a record with timestamp ts read at wall time now
// would move the watermark past limit.
func (s *partState) wouldExceed(p *params, ts, now, limit int64) bool {
	if lim := now + p.skew; ts > lim {
		ts = lim
	}
	return ts > s.Max && p.quant(ts-p.delay) > limit
}

// observeUntimed accounts for a record without an event time
// (see click.NoEventTimeHeader): it moves the read position and applies idle floors
// but leaves the watermark and the open minutes alone.
func (s *partState) observeUntimed(off int64) int64 {
	for s.nextFloor < len(s.Floors) && s.Floors[s.nextFloor].Offset <= off {
		if f := s.Floors[s.nextFloor].WM; f > s.WM {
			s.WM = f
		}
		s.nextFloor++
	}
	s.Next = off + 1
	return s.WM
}

// mark records minute m's first offset, unless the minute is already known.
func (s *partState) mark(m, off, w int64) {
	i := len(s.Minutes)
	for i > 0 && s.Minutes[i-1].Minute > m {
		i--
	}
	if i > 0 && s.Minutes[i-1].Minute == m {
		return
	}
	s.Minutes = append(s.Minutes, minuteMark{})
	copy(s.Minutes[i+1:], s.Minutes[i:])
	s.Minutes[i] = minuteMark{Minute: m, Offset: off, WM: w, Max: s.Max}
	if len(s.Minutes) > maxMinutes {
		// Merge the two oldest minutes into one that keeps the smaller offset
		// and the later minute: the commit can only be held back, never pushed
		// ahead of a record whose window is open.
		a, b := s.Minutes[0], s.Minutes[1]
		if a.Offset < b.Offset {
			b.Offset, b.WM, b.Max = a.Offset, a.WM, a.Max
		}
		s.Minutes = append(s.Minutes[:0], append([]minuteMark{b}, s.Minutes[2:]...)...)
	}
}

// closeWM is the watermark minutes are closed against: the partition's own,
// or the read's smallest if that is behind.
func (s *partState) closeWM() int64 { return min(s.WM, s.shared) }

// prune drops the minutes whose windows are closed at closeWM.
func (s *partState) prune(p *params) {
	n := 0
	for n < len(s.Minutes) && s.Minutes[n].Minute+p.closeAfter <= s.closeWM() {
		n++
	}
	if n > 0 {
		s.Final = max(s.Final, s.Minutes[n-1].Minute+p.closeAfter)
		s.Minutes = append(s.Minutes[:0], s.Minutes[n:]...)
	}
}

// dataSeen notes that a poll returned records at wall time now.
func (s *partState) dataSeen(now int64) { s.LastData = now }

// idle applies the idle rule at wall time now: a partition that had nothing to
// read for the idle timeout moves its watermark to now − delay − skew (never
// backwards), and records that as a floor at the next offset.
func (s *partState) idle(p *params, now int64) bool {
	if now-s.LastData < p.idle {
		return false
	}
	t := p.quant(now - p.delay - p.skew)
	if t <= s.WM {
		return false
	}
	s.WM = t
	s.prune(p)
	if n := len(s.Floors); n > 0 && s.Floors[n-1].Offset == s.Next {
		s.Floors[n-1].WM = t
	} else {
		s.Floors = append(s.Floors, floor{Offset: s.Next, WM: t})
		if len(s.Floors) > maxFloors {
			s.Floors = append(s.Floors[:0], s.Floors[1:]...)
		}
	}
	s.nextFloor = len(s.Floors)
	return true
}

// safe returns the offset from which a restart re-reads every record of every
// window still open, with the estimator as it was just before that offset.
func (s *partState) safe(p *params) candidate {
	s.prune(p)
	closed := max(s.closeWM(), s.Closed)
	if len(s.Minutes) == 0 {
		return candidate{Offset: s.Next, WM: s.WM, Max: s.Max, Closed: closed, Need: s.Final}
	}
	c := candidate{Offset: s.Minutes[0].Offset, WM: s.Minutes[0].WM, Max: s.Minutes[0].Max, Closed: closed}
	for _, m := range s.Minutes[1:] {
		if m.Offset < c.Offset {
			c = candidate{Offset: m.Offset, WM: m.WM, Max: m.Max, Closed: closed}
		}
	}
	c.Need = s.Final
	return c
}

// commitDue records a commit candidate every commit interval and returns the
// newest candidate that is at least CommitDelay old and needs nothing past
// final (the gated sinks' progress, see Gate; math.MaxInt64 without a gate),
// if any, with its metadata. Older candidates are dropped with it.
func (s *partState) commitDue(p *params, now, final int64) (off int64, meta string, ok bool) {
	if s.LastCandidate == 0 || now-s.LastCandidate >= p.commitEach {
		c := s.safe(p)
		c.At = now
		s.Pending = append(s.Pending, c)
		if len(s.Pending) > maxPending {
			s.Pending = append(s.Pending[:0], s.Pending[1:]...)
		}
		s.LastCandidate = now
	}
	i := -1
	for j, c := range s.Pending {
		if now-c.At >= p.commitDelay && c.Need <= final {
			i = j
		}
	}
	if i < 0 {
		return 0, "", false
	}
	c := s.Pending[i]
	s.Pending = append(s.Pending[:0], s.Pending[i+1:]...)
	if c.Offset < s.Committed {
		return 0, "", false // never move a commit backwards
	}
	return c.Offset, s.metadata(c), true
}

// committed notes a successful commit at off: floors at or before it are now
// folded into the committed watermark and are no longer needed.
func (s *partState) committed(off int64) {
	s.Committed = off
	n := 0
	for n < len(s.Floors) && s.Floors[n].Offset <= off && n < s.nextFloor {
		n++
	}
	if n > 0 {
		s.Floors = append(s.Floors[:0], s.Floors[n:]...)
		s.nextFloor -= n
	}
}

// metaVersion prefixes the commit metadata so a format change is detected.
const metaVersion = "adclick-wm1"

// metadata encodes the estimator as of candidate c: its watermark and largest
// timestamp, the idle floors after its offset and, when later than the
// watermark, the watermark that closed the minutes before it ("closed=ms").
func (s *partState) metadata(c candidate) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d %d", metaVersion, c.WM, c.Max)
	for _, f := range s.Floors {
		if f.Offset > c.Offset {
			fmt.Fprintf(&b, " %d:%d", f.Offset, f.WM)
		}
	}
	if c.Closed > c.WM {
		fmt.Fprintf(&b, " closed=%d", c.Closed)
	}
	return b.String()
}

// restoreState rebuilds a partition's estimator from commit metadata written
// by metadata, so re-reading from the committed offset repeats the original
// run's decisions.
func restoreState(meta string) (*partState, error) {
	f := strings.Fields(meta)
	if len(f) < 3 || f[0] != metaVersion {
		return nil, fmt.Errorf("commit metadata %q is not %s", truncate(meta, 64), metaVersion)
	}
	s := newPartState()
	var err error
	if s.WM, err = strconv.ParseInt(f[1], 10, 64); err != nil {
		return nil, fmt.Errorf("commit metadata watermark: %w", err)
	}
	if s.Max, err = strconv.ParseInt(f[2], 10, 64); err != nil {
		return nil, fmt.Errorf("commit metadata max timestamp: %w", err)
	}
	for _, kv := range f[3:] {
		if v, ok := strings.CutPrefix(kv, "closed="); ok {
			if s.Closed, err = strconv.ParseInt(v, 10, 64); err != nil {
				return nil, fmt.Errorf("commit metadata closed watermark: %w", err)
			}
			continue
		}
		o, w, ok := strings.Cut(kv, ":")
		if !ok {
			return nil, fmt.Errorf("commit metadata floor %q: want offset:watermark", kv)
		}
		var fl floor
		if fl.Offset, err = strconv.ParseInt(o, 10, 64); err != nil {
			return nil, fmt.Errorf("commit metadata floor offset: %w", err)
		}
		if fl.WM, err = strconv.ParseInt(w, 10, 64); err != nil {
			return nil, fmt.Errorf("commit metadata floor watermark: %w", err)
		}
		if n := len(s.Floors); n > 0 && s.Floors[n-1].Offset >= fl.Offset {
			return nil, fmt.Errorf("commit metadata floors out of order at %q", kv)
		}
		s.Floors = append(s.Floors, fl)
	}
	return s, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// encodeState and decodeState carry partState as the SDF's watermark
// estimator state; they run at each checkpoint, not per record.
func encodeState(s *partState) []byte {
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("kafkaio: encoding partition state: %v", err)) // plain data: cannot fail
	}
	return b
}

func decodeState(b []byte) (*partState, error) {
	if len(b) == 0 {
		return newPartState(), nil
	}
	s := newPartState()
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("kafkaio: decoding partition state: %w", err)
	}
	// Floors at or before the next offset have been applied already.
	for s.nextFloor < len(s.Floors) && s.Floors[s.nextFloor].Offset < s.Next {
		s.nextFloor++
	}
	return s, nil
}

// estimator is the SDF's watermark estimator: one partState behind a mutex,
// because the SDK reads the watermark and state from its own goroutine when
// it checkpoints.
type estimator struct {
	mu  sync.Mutex
	s   *partState
	err error // undecodable state, reported by ProcessElement

	// set by ProcessElement: where this partition's watermark is shared
	reads *readWatermarks
	part  int32
}

// CurrentWatermark is what the runner sees as this partition's watermark:
// the smallest of the read's partitions in this process (readWatermarks).
func (e *estimator) CurrentWatermark() time.Time {
	e.mu.Lock()
	wm := e.s.WM
	e.mu.Unlock()
	if e.reads != nil {
		wm = e.reads.set(e.part, wm)
	}
	return mtime.Time(wm).ToTime()
}

// done removes the partition from the read's shared watermarks once its
// bounded read completed.
func (e *estimator) done() {
	if e.reads != nil {
		e.reads.done(e.part)
	}
}

// readWatermarks holds the latest watermark of every partition of one read
// in this process. Prism takes a stage's output watermark from the residuals
// of whichever bundle finished last, not the minimum over all restrictions,
// so one partition reporting "12:30" would let the runner drop the elements
// a lagging partition is still reading at "12:20". Reporting the minimum
// over the read's partitions keeps every partition's elements on time. On a
// distributed runner each process sees only its own partitions, and the
// runner combines restrictions itself.
type readWatermarks struct {
	mu sync.Mutex
	wm map[int32]int64
}

// set records partition p's watermark and returns the read's minimum.
func (r *readWatermarks) set(p int32, wm int64) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.wm[p]; !ok || wm > old {
		r.wm[p] = wm
	}
	m := r.wm[p]
	for _, w := range r.wm {
		m = min(m, w)
	}
	return m
}

// min returns the read's smallest watermark (math.MaxInt64 if none).
func (r *readWatermarks) min() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := int64(math.MaxInt64)
	for _, w := range r.wm {
		m = min(m, w)
	}
	return m
}

// done removes a partition whose bounded read completed.
func (r *readWatermarks) done(p int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.wm, p)
}

// readRegistry maps a read (ReadID) to its readWatermarks. It is process
// state by necessity: the partitions' DoFn instances share nothing else.
// One entry per Read in a pipeline built in this process.
var readRegistry = struct {
	sync.Mutex
	m map[string]*readWatermarks
}{m: map[string]*readWatermarks{}}

func watermarksOf(readID string) *readWatermarks {
	readRegistry.Lock()
	defer readRegistry.Unlock()
	r := readRegistry.m[readID]
	if r == nil {
		r = &readWatermarks{wm: map[int32]int64{}}
		readRegistry.m[readID] = r
	}
	return r
}
