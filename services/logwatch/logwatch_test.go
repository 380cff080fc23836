package logwatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/testing/clickgen"
	"github.com/adclick/adclick/testing/testenv"
)

const topic = "clicks-raw"

// deadline for anything that waits: generous, the machine is shared.
const deadline = 90 * time.Second

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newCluster(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(4, topic)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// lines generates n distinct click lines (valid and malformed mixed).
func lines(t testing.TB, seed uint64, n int) [][]byte {
	t.Helper()
	g, err := clickgen.New(clickgen.Config{Seed: seed, Ads: 50, MalformedShare: 0.05, LateShare: 0.05})
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]byte, n)
	for i := range out {
		out[i] = bytes.Clone(g.Next().Data)
	}
	return out
}

func appendLines(t testing.TB, path string, ls [][]byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b bytes.Buffer
	for _, l := range ls {
		b.Write(l)
		b.WriteByte('\n')
	}
	if _, err := f.Write(b.Bytes()); err != nil {
		t.Fatal(err)
	}
}

// collector consumes the topic from the start into memory.
type collector struct {
	mu   sync.Mutex
	recs []*kgo.Record
}

func collect(t testing.TB, brokers []string) *collector {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) {
				c.mu.Lock()
				c.recs = append(c.recs, r)
				c.mu.Unlock()
			})
		}
	}()
	t.Cleanup(func() { cancel(); <-done; cl.Close() })
	return c
}

// counts returns how often each value was received.
func (c *collector) counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := map[string]int{}
	for _, r := range c.recs {
		m[string(r.Value)]++
	}
	return m
}

func (c *collector) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.recs)
}

// want counts the lines (the generator repeats some malformed lines verbatim).
func want(ls [][]byte) map[string]int {
	m := map[string]int{}
	for _, l := range ls {
		m[string(l)]++
	}
	return m
}

// exactlyOnce fails unless got holds each line of ls exactly as often as ls does.
func exactlyOnce(t testing.TB, got map[string]int, ls [][]byte) {
	t.Helper()
	for l, n := range want(ls) {
		if got[l] != n {
			t.Fatalf("line %.100q arrived %d times, want %d", l, got[l], n)
		}
	}
}

// waitAll waits until every line has been received at least as often as it
// was written.
func (c *collector) waitAll(t testing.TB, ls [][]byte) map[string]int {
	t.Helper()
	end := time.Now().Add(deadline)
	w := want(ls)
	for {
		m := c.counts()
		missing := 0
		var first string
		for l, n := range w {
			if m[l] < n {
				if missing == 0 {
					first = l
				}
				missing += n - m[l]
			}
		}
		if missing == 0 {
			return m
		}
		if time.Now().After(end) {
			t.Fatalf("%d of %d lines never arrived, e.g. %.120q", missing, len(ls), first)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type running struct {
	cancel   context.CancelFunc
	finished chan struct{} // closed when Run returned; err is then set
	err      error
	w        *Watcher
}

func (r *running) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	select {
	case <-r.finished:
		if r.err != nil {
			t.Fatalf("watcher returned %v", r.err)
		}
	case <-time.After(deadline):
		t.Fatal("watcher did not stop")
	}
}

func start(t testing.TB, cfg Config) *running {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	if cfg.Topic == "" {
		cfg.Topic = topic
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 20 * time.Millisecond
	}
	if cfg.CommitInterval == 0 {
		cfg.CommitInterval = 50 * time.Millisecond
	}
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, finished: make(chan struct{}), w: w}
	go func() { r.err = w.Run(ctx); close(r.finished) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.finished:
		case <-time.After(deadline):
		}
	})
	return r
}

func committedOffsets(t testing.TB, statePath string) map[string]int64 {
	t.Helper()
	st, err := loadState(statePath)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int64{}
	for _, s := range st {
		m[s.Path] = s.Offset
	}
	return m
}

// Without restarts every line arrives exactly once, with the key and record
// timestamp of its click; partial writes are stitched together; the persisted
// position ends at the end of the file; metrics agree.
func TestPublishesEveryLineOnce(t *testing.T) {
	c := newCluster(t)
	dir := t.TempDir()
	log := filepath.Join(dir, "clicks.log")
	state := filepath.Join(dir, "state", "pos.json")
	ls := lines(t, 1, 3000)
	appendLines(t, log, ls[:1000])
	reg := prometheus.NewRegistry()
	r := start(t, Config{Globs: []string{filepath.Join(dir, "*.log")}, Brokers: c.ListenAddrs(), StatePath: state, Registerer: reg})
	col := collect(t, c.ListenAddrs())
	// The rest in odd-sized writes that split lines.
	var rest bytes.Buffer
	for _, l := range ls[1000:] {
		rest.Write(l)
		rest.WriteByte('\n')
	}
	f, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	for b := rest.Bytes(); len(b) > 0; {
		n := min(len(b), 7777)
		if _, err := f.Write(b[:n]); err != nil {
			t.Fatal(err)
		}
		b = b[n:]
		time.Sleep(time.Millisecond)
	}
	f.Close()
	col.waitAll(t, ls)
	r.stop(t)
	time.Sleep(300 * time.Millisecond) // let the collector see any stray extra record
	exactlyOnce(t, col.counts(), ls)
	if col.len() != len(ls) {
		t.Fatalf("%d records for %d lines", col.len(), len(ls))
	}
	var p click.Parser
	col.mu.Lock()
	for _, rec := range col.recs {
		ck, err := p.Parse(rec.Value)
		if err != nil {
			if len(rec.Key) != 0 {
				t.Errorf("malformed line published with key %q", rec.Key)
			}
			if !slices.ContainsFunc(rec.Headers, func(h kgo.RecordHeader) bool { return h.Key == click.NoEventTimeHeader }) {
				t.Errorf("malformed line %q published without the %s header: its wall-clock timestamp would move the watermark", rec.Value, click.NoEventTimeHeader)
			}
			continue
		}
		if et, ok := eventTimeHeader(rec); string(rec.Key) != ck.AdID || !ok || et != ck.Time || !publishedNow(rec.Timestamp) {
			t.Errorf("record key %q event time %d (%v), timestamp %v; want %q, %d, a publishing time", rec.Key, et, ok, rec.Timestamp, ck.AdID, ck.Time)
		}
	}
	col.mu.Unlock()
	fi, _ := os.Stat(log)
	if got := committedOffsets(t, state)[log]; got != fi.Size() {
		t.Errorf("persisted offset %d, file size %d", got, fi.Size())
	}
	for name, want := range map[string]float64{"lines_read": 3000, "lines_published": 3000} {
		var got float64
		switch name {
		case "lines_read":
			got = val(r.w.m.linesRead)
		case "lines_published":
			got = val(r.w.m.published)
		}
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := val(r.w.m.bytesRead); got != float64(fi.Size()) {
		t.Errorf("bytes read %v, file size %d", got, fi.Size())
	}
	if n := series(t, reg, "adclick_logwatch_lag_bytes"); n != 1 {
		t.Errorf("lag gauge has %d series, want 1 (one file)", n)
	}
	if got := val(r.w.m.lag.WithLabelValues(log)); got != 0 {
		t.Errorf("lag %v bytes after everything was acknowledged", got)
	}
}

// A line without its newline is not published until the newline comes.
func TestPartialLineWaits(t *testing.T) {
	c := newCluster(t)
	dir := t.TempDir()
	log := filepath.Join(dir, "clicks.log")
	ls := lines(t, 2, 3)
	appendLines(t, log, ls[:1])
	r := start(t, Config{Globs: []string{log}, Brokers: c.ListenAddrs(), StatePath: filepath.Join(dir, "pos.json")})
	col := collect(t, c.ListenAddrs())
	col.waitAll(t, ls[:1])
	f, _ := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0)
	defer f.Close()
	half := len(ls[1]) / 2
	f.Write(ls[1][:half])
	// Wait until the watcher has surely read the half line (it counts bytes of
	// complete lines only, so watch its read position instead).
	end := time.Now().Add(deadline)
	for {
		fi, _ := os.Stat(log)
		r.w.mu.Lock()
		var off int64
		for _, tf := range r.w.files {
			off = tf.readOff
		}
		r.w.mu.Unlock()
		if off == fi.Size() {
			break
		}
		if time.Now().After(end) {
			t.Fatal("watcher never read the partial line")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	if n := col.len(); n != 1 {
		t.Fatalf("%d records after a partial line, want 1", n)
	}
	if got := committedOffsets(t, filepath.Join(dir, "pos.json"))[log]; got != int64(len(ls[0])+1) {
		t.Fatalf("persisted offset %d covers part of an unfinished line (want %d)", got, len(ls[0])+1)
	}
	f.Write(ls[1][half:])
	f.Write([]byte("\n"))
	f.Write(ls[2])
	f.Write([]byte("\n"))
	exactlyOnce(t, col.waitAll(t, ls), ls)
}

// Over-long lines are cut (still over the click limit) and blank lines are
// skipped; the lines around them are unaffected.
func TestLongAndBlankLines(t *testing.T) {
	c := newCluster(t)
	dir := t.TempDir()
	log := filepath.Join(dir, "clicks.log")
	ls := lines(t, 3, 2)
	long := append([]byte(`{"event_id":"x","pad":"`), bytes.Repeat([]byte("y"), 300<<10)...)
	appendLines(t, log, [][]byte{ls[0], long, {}, ls[1]})
	r := start(t, Config{Globs: []string{log}, Brokers: c.ListenAddrs(), StatePath: filepath.Join(dir, "pos.json")})
	col := collect(t, c.ListenAddrs())
	col.waitAll(t, ls)
	end := time.Now().Add(deadline)
	for col.len() < 3 && time.Now().Before(end) {
		time.Sleep(10 * time.Millisecond)
	}
	r.stop(t)
	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.recs) != 3 {
		t.Fatalf("%d records, want 3 (blank line skipped)", len(col.recs))
	}
	var p click.Parser
	found := false
	for _, rec := range col.recs {
		if bytes.HasPrefix(rec.Value, long[:20]) {
			found = true
			if len(rec.Value) != DefaultMaxLineBytes {
				t.Errorf("long line published with %d bytes, want %d", len(rec.Value), DefaultMaxLineBytes)
			}
			if _, err := p.Parse(rec.Value); err == nil {
				t.Error("cut line parses as a click")
			} else if rj, _ := click.AsReject(err); rj.Reason != click.ReasonTooLong {
				t.Errorf("cut line rejected as %s, want %s", rj.Reason, click.ReasonTooLong)
			}
		}
	}
	if !found {
		t.Error("long line not published")
	}
}

// A watcher stopped at arbitrary moments (gracefully, and abruptly with no
// time to drain) and restarted from its state file delivers every line at
// least once; the re-sent ones are few.
func TestRestartLosesNothing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		drain time.Duration
	}{{"graceful", 0}, {"abrupt", time.Nanosecond}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t)
			dir := t.TempDir()
			log := filepath.Join(dir, "clicks.log")
			state := filepath.Join(dir, "pos.json")
			ls := lines(t, 4, 20000)
			col := collect(t, c.ListenAddrs())
			cfg := Config{Globs: []string{log}, Brokers: c.ListenAddrs(), StatePath: state, DrainTimeout: tc.drain, MaxInFlight: 500}
			written := 0
			for round := 0; round < 6; round++ {
				r := start(t, cfg)
				// Write a slice while it runs; stop once part of it arrived.
				next := min(written+len(ls)/6+1, len(ls))
				for i := written; i < next; i += 500 {
					appendLines(t, log, ls[i:min(i+500, next)])
				}
				written = next
				target := col.len() + 300
				end := time.Now().Add(deadline)
				for col.len() < target && time.Now().Before(end) {
					time.Sleep(time.Millisecond)
				}
				r.stop(t)
			}
			r := start(t, cfg)
			m := col.waitAll(t, ls)
			r.stop(t)
			extra := 0
			for l, n := range want(ls) {
				extra += m[l] - n
			}
			t.Logf("%d lines, %d re-sent after restarts", len(ls), extra)
			if tc.drain == 0 && extra != 0 {
				t.Errorf("graceful restarts re-sent %d lines: the drain should persist everything acknowledged", extra)
			}
		})
	}
}

// Rotation by rename: the old file is read to its end (including lines the
// writer appends after the rename), the new file from its start; also when
// the rename happens while the watcher is down.
func TestRenameRotation(t *testing.T) {
	for _, down := range []bool{false, true} {
		t.Run(fmt.Sprintf("while_down=%v", down), func(t *testing.T) {
			c := newCluster(t)
			dir := t.TempDir()
			log := filepath.Join(dir, "clicks.log")
			state := filepath.Join(dir, "pos.json")
			ls := lines(t, 5, 4000)
			col := collect(t, c.ListenAddrs())
			cfg := Config{Globs: []string{log}, Brokers: c.ListenAddrs(), StatePath: state, RenamedGrace: time.Second}
			w, err := os.OpenFile(log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			writeTo := func(f *os.File, ls [][]byte) {
				for _, l := range ls {
					f.Write(append(bytes.Clone(l), '\n'))
				}
			}
			writeTo(w, ls[:1000])
			r := start(t, cfg)
			col.waitAll(t, ls[:1000])
			if down {
				r.stop(t)
			}
			writeTo(w, ls[1000:1500])
			if err := os.Rename(log, log+".1"); err != nil {
				t.Fatal(err)
			}
			writeTo(w, ls[1500:2000]) // the writer has not reopened yet
			w.Close()
			appendLines(t, log, ls[2000:3000])
			if !down {
				// While both are open, each has its own state entry under its own name.
				end := time.Now().Add(deadline)
				for {
					offs := committedOffsets(t, state)
					if _, ok := offs[log+".1"]; ok && len(offs) == 2 {
						break
					}
					if time.Now().After(end) {
						t.Fatalf("state during rotation: %v", offs)
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
			if down {
				r = start(t, cfg)
			}
			appendLines(t, log, ls[3000:])
			m := col.waitAll(t, ls)
			// The old file is dropped after the grace period.
			end := time.Now().Add(deadline)
			for {
				st, err := loadState(state)
				if err != nil {
					t.Fatal(err)
				}
				fi, err := os.Stat(log)
				if err != nil {
					t.Fatal(err)
				}
				id, _ := idOf(fi)
				if len(st) == 1 && st[0].fileID == id {
					break
				}
				if time.Now().After(end) {
					t.Fatalf("rotated file still in the state: %+v", st)
				}
				time.Sleep(20 * time.Millisecond)
			}
			r.stop(t)
			exactlyOnce(t, m, ls)
		})
	}
}

// Rotation by copytruncate: after the truncation the file is read from its
// start, whether the watcher sees it shrink or finds it rewritten past the
// old position after a restart.
func TestCopyTruncate(t *testing.T) {
	for _, down := range []bool{false, true} {
		t.Run(fmt.Sprintf("while_down=%v", down), func(t *testing.T) {
			c := newCluster(t)
			dir := t.TempDir()
			log := filepath.Join(dir, "clicks.log")
			state := filepath.Join(dir, "pos.json")
			ls := lines(t, 6, 5000)
			col := collect(t, c.ListenAddrs())
			cfg := Config{Globs: []string{log}, Brokers: c.ListenAddrs(), StatePath: state}
			appendLines(t, log, ls[:1000])
			r := start(t, cfg)
			col.waitAll(t, ls[:1000])
			if down {
				r.stop(t)
			}
			// copytruncate: copy (not watched), then truncate in place.
			old, _ := os.ReadFile(log)
			os.WriteFile(log+".1", old, 0o644)
			if err := os.Truncate(log, 0); err != nil {
				t.Fatal(err)
			}
			if down {
				// Regrown past the old position before the watcher looks again.
				appendLines(t, log, ls[1000:3500])
				r = start(t, cfg)
			} else {
				appendLines(t, log, ls[1000:1100])
				appendLines(t, log, ls[1100:3500])
			}
			appendLines(t, log, ls[3500:])
			m := col.waitAll(t, ls)
			r.stop(t)
			exactlyOnce(t, m, ls)
			if n := val(r.w.m.truncations); !down && n != 1 {
				t.Errorf("%v truncations counted, want 1", n)
			}
		})
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// With the broker stopped the watcher stops reading at its in-flight bound,
// persists nothing unacknowledged, and delivers everything once the broker
// is back.
func TestBrokerDownBackPressure(t *testing.T) {
	port := freePort(t)
	data := t.TempDir()
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(4, topic), kfake.Ports(port), kfake.DataDir(data), kfake.SyncWrites()}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	brokers := c.ListenAddrs()
	dir := t.TempDir()
	log := filepath.Join(dir, "clicks.log")
	state := filepath.Join(dir, "pos.json")
	ls := lines(t, 7, 6000)
	appendLines(t, log, ls[:1000])
	const maxInFlight = 200
	r := start(t, Config{Globs: []string{log}, Brokers: brokers, StatePath: state, MaxInFlight: maxInFlight})
	end := time.Now().Add(deadline)
	for val(r.w.m.published) < 1000 {
		if time.Now().After(end) {
			t.Fatal("first lines never published")
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.Close()
	appendLines(t, log, ls[1000:])
	// The watcher reads up to its bound and then waits.
	time.Sleep(2 * time.Second)
	read := val(r.w.m.linesRead)
	pub := val(r.w.m.published)
	if read > pub+maxInFlight {
		t.Errorf("read %v lines with %v published: more than %d in flight", read, pub, maxInFlight)
	}
	if read >= float64(len(ls)) {
		t.Errorf("read every line while the broker was down: no back-pressure")
	}
	// Nothing unacknowledged is persisted.
	fi, _ := os.Stat(log)
	if off := committedOffsets(t, state)[log]; off >= fi.Size() {
		t.Errorf("persisted offset %d = whole file while the broker is down", off)
	}
	c2, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	col := collect(t, c2.ListenAddrs())
	col.waitAll(t, ls)
	r.stop(t)
}

// Hot ads get salted keys spread over buckets; other ads keep their ad_id.
func TestSaltedHotAds(t *testing.T) {
	c := newCluster(t)
	dir := t.TempDir()
	log := filepath.Join(dir, "clicks.log")
	ls := lines(t, 8, 2000)
	appendLines(t, log, ls)
	hot := clickgen.AdID(0)
	r := start(t, Config{Globs: []string{log}, Brokers: c.ListenAddrs(), StatePath: filepath.Join(dir, "pos.json"),
		SaltHotAds: []string{hot}, SaltBuckets: 4})
	col := collect(t, c.ListenAddrs())
	col.waitAll(t, ls)
	r.stop(t)
	var p click.Parser
	buckets := map[string]bool{}
	col.mu.Lock()
	defer col.mu.Unlock()
	for _, rec := range col.recs {
		ck, err := p.Parse(rec.Value)
		if err != nil {
			continue
		}
		k := string(rec.Key)
		if ck.AdID == hot {
			b, ok := strings.CutPrefix(k, hot+"#")
			if !ok || len(b) != 1 || b[0] < '0' || b[0] > '3' {
				t.Fatalf("hot ad key %q", k)
			}
			buckets[b] = true
		} else if k != ck.AdID {
			t.Fatalf("cold ad %s has key %q", ck.AdID, k)
		}
	}
	if len(buckets) != 4 {
		t.Errorf("hot ad spread over %d buckets, want 4", len(buckets))
	}
}

func TestConfigErrors(t *testing.T) {
	ok := Config{Globs: []string{"/tmp/x"}, Brokers: []string{"127.0.0.1:1"}, Topic: "t", StatePath: filepath.Join(t.TempDir(), "s.json")}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no globs", func(c *Config) { c.Globs = nil }, "glob"},
		{"bad glob", func(c *Config) { c.Globs = []string{"["} }, "bad glob"},
		{"no brokers", func(c *Config) { c.Brokers = nil }, "brokers"},
		{"no topic", func(c *Config) { c.Topic = "" }, "topic"},
		{"no state", func(c *Config) { c.StatePath = "" }, "state"},
		{"line limit", func(c *Config) { c.MaxLineBytes = 1000 }, "max line bytes"},
		{"salt", func(c *Config) { c.SaltHotAds = []string{"a"}; c.SaltBuckets = 1 }, "buckets"},
	} {
		c := ok
		tc.mod(&c)
		_, err := New(c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error about %q", tc.name, err, tc.want)
		}
	}
	// A topic the broker does not have is an error at start, not a silent wait.
	cl := newCluster(t)
	c := ok
	c.Brokers, c.Topic = cl.ListenAddrs(), "no-such-topic"
	w, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("unknown topic: %v", err)
	}
	// A corrupt state file is refused, not silently reset.
	c = ok
	os.WriteFile(c.StatePath, []byte("{not json"), 0o644)
	if _, err := New(c); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("corrupt state: %v", err)
	}
}

// The same end-to-end check against a real Apache Kafka.
func TestRealKafka(t *testing.T) {
	brokers := testenv.Kafka(t)
	name := createTopic(t, brokers, 3)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	dir := t.TempDir()
	log := filepath.Join(dir, "clicks.log")
	ls := lines(t, 9, 5000)
	// Kafka refuses record timestamps more than an hour ahead of its clock
	// (log.message.timestamp.after.max.ms): such clicks must still get
	// through, with their event time (the timestamp is the publishing time).
	for i := range 3 {
		future := time.Now().Add(48 * time.Hour).UnixMilli()
		ls = append(ls, fmt.Appendf(nil, `{"event_id":"future-%d","ad_id":"ad-1","timestamp":%d}`, i, future))
	}
	appendLines(t, log, ls[:2500])
	r := start(t, Config{Globs: []string{log}, Brokers: brokers, Topic: name, StatePath: filepath.Join(dir, "pos.json")})
	appendLines(t, log, ls[2500:])

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(name), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := map[string]int{}
	n := 0
	var p click.Parser
	for n < len(ls) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("only %d of %d records arrived", n, len(ls))
		}
		for _, e := range fs.Errors() {
			if !errors.Is(e.Err, context.DeadlineExceeded) {
				t.Logf("fetch: %v", e.Err)
			}
		}
		fs.EachRecord(func(r *kgo.Record) {
			got[string(r.Value)]++
			n++
			if c, err := p.Parse(r.Value); err == nil {
				if et, ok := eventTimeHeader(r); !ok || et != c.Time || string(r.Key) != c.AdID || !publishedNow(r.Timestamp) {
					t.Errorf("record key %q event time %d (%v), timestamp %v for click %s at %d", r.Key, et, ok, r.Timestamp, c.AdID, c.Time)
				}
			}
		})
	}
	r.stop(t)
	exactlyOnce(t, got, ls)
}

// publishedNow says whether a record timestamp is a publishing time (the
// last hour), not the event time of the test's clicks (fixed dates long
// past, or days ahead).
func publishedNow(ts time.Time) bool {
	return time.Since(ts) < time.Hour && time.Until(ts) < time.Minute
}

// eventTimeHeader is the event time a record carries.
func eventTimeHeader(r *kgo.Record) (int64, bool) {
	for _, h := range r.Headers {
		if h.Key == click.EventTimeHeader {
			return click.ParseEventTime(h.Value)
		}
	}
	return 0, false
}

func val(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

func series(t testing.TB, g prometheus.Gatherer, name string) int {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.Metric)
		}
	}
	return 0
}

// createTopic makes a fresh topic on a real broker.
func createTopic(t testing.TB, brokers []string, partitions int32) string {
	t.Helper()
	admin, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := fmt.Sprintf("logwatch-test-%d", time.Now().UnixNano())
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, 1
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 30000
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	resp, err := req.RequestWith(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	if ec := resp.Topics[0].ErrorCode; ec != 0 {
		t.Fatalf("create topic %s: error code %d", name, ec)
	}
	return name
}

// A broker that is not there yet when the watcher starts: it waits, then
// delivers everything.
func TestBrokerAbsentAtStart(t *testing.T) {
	port := freePort(t)
	dir := t.TempDir()
	log := filepath.Join(dir, "clicks.log")
	state := filepath.Join(dir, "pos.json")
	ls := lines(t, 12, 3000)
	appendLines(t, log, ls)
	r := start(t, Config{Globs: []string{log}, Brokers: []string{fmt.Sprintf("127.0.0.1:%d", port)}, StatePath: state, MaxInFlight: 100})
	time.Sleep(time.Second)
	if off := committedOffsets(t, state)[log]; off != 0 {
		t.Fatalf("persisted offset %d with no broker", off)
	}
	c := newCluster(t, kfake.Ports(port))
	col := collect(t, c.ListenAddrs())
	exactlyOnce(t, col.waitAll(t, ls), ls)
	r.stop(t)
}
