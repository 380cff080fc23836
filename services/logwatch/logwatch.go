// Package logwatch is the log watcher of the design (§4 ①): it tails click
// log files (JSON lines), publishes every line to the raw Kafka topic keyed by
// ad_id, and remembers how far it got so that a restart loses nothing.
//
// Delivery is at least once, never at most once: a file position is persisted
// (inode + offset, in a small JSON state file replaced atomically) only after
// the broker has acknowledged every line before it. A crash or kill re-sends
// at most the lines after the last persisted position; the pipeline
// deduplicates them by event_id. When the broker is down the watcher stops
// reading (a bounded number of records and bytes in flight) and the producer
// retries with backoff forever: nothing is dropped.
//
// Rotation: files are tracked by inode, not by name. Rotation by rename keeps
// reading the old inode to its end (even under its new name, or none) while
// the new file under the old name is read from its start. Rotation by
// copytruncate is seen as the file shrinking below the read position (or its
// first bytes changing) and reading restarts at offset 0. With copytruncate,
// make the glob match only the live file: a copy is a new inode and would be
// read, and published again, from its start.
//
// Records: value = the line as written; timestamp = the click's event time
// when the line is a valid click (so the stream's watermark can come straight
// from Kafka record timestamps), otherwise the time it was read. Exception:
// an event time more than 50 minutes in the future (Kafka's
// log.message.timestamp.after.max.ms refuses those, 1 h by default) gets the
// read time too, and so does any record the broker refuses with
// INVALID_TIMESTAMP. Readers needing event time must take it from the value. A malformed
// line is published too, with an empty key: the pipeline dead-letters it with
// its reason. Lines longer than Config.MaxLineBytes are cut to that length;
// the limit is above docs/spec.md §1's 64 KiB, so a cut line is still rejected as
// over-long downstream.
//
// Hot ads (design §11): a few very hot ads can be spread over several
// partitions with SaltHotAds/SaltBuckets: their key becomes ad_id + "#" +
// bucket. Nothing downstream needs to undo it: the aggregation keys by the
// ad_id inside the event, never by the Kafka key, so the salted partitions
// merge again at the aggregation's own shuffle.
package logwatch

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/adclick/adclick/domain/click"
)

// Config configures a Watcher. Zero values mean the defaults below.
type Config struct {
	// Globs name the files to tail (filepath.Glob patterns); re-evaluated every
	// PollInterval, so files that appear later are picked up.
	Globs []string
	// Brokers and Topic say where to publish.
	Brokers []string
	Topic   string
	// KafkaOpts are extra franz-go options (TLS, SASL, ...), applied last.
	KafkaOpts []kgo.Opt
	// StatePath is the JSON file that keeps the acknowledged positions.
	StatePath string

	PollInterval   time.Duration // how often idle files and the globs are checked; default 200ms
	CommitInterval time.Duration // how often acknowledged positions are persisted; default 1s
	// MaxInFlight and MaxInFlightBytes bound the records sent but not yet
	// acknowledged: reading pauses at either bound. Defaults 20000 and 32 MiB.
	MaxInFlight      int
	MaxInFlightBytes int64
	// MaxLineBytes cuts longer lines (see the package doc); default and
	// minimum click.MaxLineBytes+1 rounded to 128 KiB.
	MaxLineBytes int
	// RenamedGrace is how long a file that left the globs (renamed away or
	// deleted) is kept open at its end in case the writer still appends to it
	// before reopening; default 5s.
	RenamedGrace time.Duration
	// DrainTimeout bounds the wait for acknowledgements on shutdown; lines not
	// acknowledged by then are re-sent after a restart. Default 30s.
	DrainTimeout time.Duration

	// SaltHotAds lists hot ads whose key is salted into SaltBuckets buckets.
	SaltHotAds  []string
	SaltBuckets int

	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil: metrics are not registered
}

// Defaults.
const (
	DefaultPollInterval     = 200 * time.Millisecond
	DefaultCommitInterval   = time.Second
	DefaultMaxInFlight      = 20000
	DefaultMaxInFlightBytes = 32 << 20
	DefaultMaxLineBytes     = 128 << 10
	DefaultRenamedGrace     = 5 * time.Second
	DefaultDrainTimeout     = 30 * time.Second
	readChunk               = 64 << 10
	// maxFutureSkew is how far ahead of the wall clock an event time may be
	// and still serve as record timestamp; below Kafka's default 1 h limit.
	maxFutureSkew = 50 * time.Minute
)

func (c *Config) withDefaults() (Config, error) {
	d := *c
	if len(d.Globs) == 0 {
		return d, errors.New("no files to watch: give at least one glob")
	}
	for _, g := range d.Globs {
		if _, err := filepath.Match(g, ""); err != nil {
			return d, fmt.Errorf("bad glob %q: %w", g, err)
		}
	}
	if len(d.Brokers) == 0 {
		return d, errors.New("no Kafka brokers given")
	}
	if d.Topic == "" {
		return d, errors.New("no Kafka topic given")
	}
	if d.StatePath == "" {
		return d, errors.New("no state file given")
	}
	if d.PollInterval <= 0 {
		d.PollInterval = DefaultPollInterval
	}
	if d.CommitInterval <= 0 {
		d.CommitInterval = DefaultCommitInterval
	}
	if d.MaxInFlight <= 0 {
		d.MaxInFlight = DefaultMaxInFlight
	}
	if d.MaxInFlightBytes <= 0 {
		d.MaxInFlightBytes = DefaultMaxInFlightBytes
	}
	if d.MaxLineBytes <= 0 {
		d.MaxLineBytes = DefaultMaxLineBytes
	}
	if d.MaxLineBytes <= click.MaxLineBytes {
		return d, fmt.Errorf("max line bytes %d must exceed the click limit %d, so a cut line is still rejected as too long", d.MaxLineBytes, click.MaxLineBytes)
	}
	if d.RenamedGrace <= 0 {
		d.RenamedGrace = DefaultRenamedGrace
	}
	if d.DrainTimeout <= 0 {
		d.DrainTimeout = DefaultDrainTimeout
	}
	if len(d.SaltHotAds) > 0 && d.SaltBuckets < 2 {
		return d, fmt.Errorf("salting hot ads needs at least 2 buckets, got %d", d.SaltBuckets)
	}
	if d.SaltBuckets < 0 || d.SaltBuckets > 1024 {
		return d, fmt.Errorf("salt buckets must be in 0..1024, got %d", d.SaltBuckets)
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return d, nil
}

// ackq tracks one file generation's sent lines in file order, so the
// persisted position only ever moves over a prefix that is fully acknowledged
// even though acknowledgements arrive out of order across partitions.
type ackq struct {
	base  int64 // sequence number of ends[head]
	head  int
	ends  []int64
	done  []bool
	acked int64 // file offset up to which every line is acknowledged
}

func (q *ackq) push(end int64) int64 {
	q.ends = append(q.ends, end)
	q.done = append(q.done, false)
	return q.base + int64(len(q.ends)-q.head) - 1
}

func (q *ackq) ack(seq int64) {
	q.done[q.head+int(seq-q.base)] = true
	n := q.head
	for n < len(q.done) && q.done[n] {
		n++
	}
	if n == q.head {
		return
	}
	q.acked = q.ends[n-1]
	q.base += int64(n - q.head)
	q.head = n
	// Compact once the dead prefix dominates: amortised O(1) per line.
	if q.head >= 1024 && q.head*2 >= len(q.ends) {
		q.ends = q.ends[:copy(q.ends, q.ends[q.head:])]
		q.done = q.done[:copy(q.done, q.done[q.head:])]
		q.head = 0
	}
}

func (q *ackq) empty() bool { return q.head == len(q.ends) }

// tfile is one tailed file (one inode).
type tfile struct {
	id      fileID
	path    string
	f       *os.File
	q       *ackq // replaced on truncation; guarded by Watcher.mu
	readOff int64 // next byte to read
	line    []byte
	cut     bool // the current line exceeded MaxLineBytes: skip to its end
	hd      head
	size    int64
	gone    bool // no longer matched by the globs
	idleAt  time.Time
}

// Watcher tails files into Kafka. Create it with New, run it with Run.
type Watcher struct {
	cfg     Config
	log     *slog.Logger
	cl      *kgo.Client
	m       *metrics
	hot     map[string]bool
	files   map[fileID]*tfile
	initial map[fileID]fileState // persisted positions not yet matched to an open file
	parser  click.Parser
	chunk   []byte

	mu            sync.Mutex
	inflight      int
	inflightBytes int64
	retry         []retryRec    // failed records to send again
	ackCh         chan struct{} // signalled on every acknowledgement
	lastAck       time.Time     // guarded by mu
	lastStallLog  time.Time
	lastSaved     []fileState
}

// New checks cfg and connects a producer. It does not read anything yet.
func New(cfg Config) (*Watcher, error) {
	d, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("logwatch: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(d.StatePath), 0o755); err != nil {
		return nil, fmt.Errorf("logwatch: state directory: %w", err)
	}
	st, err := loadState(d.StatePath)
	if err != nil {
		return nil, err
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(d.Brokers...),
		kgo.DefaultProduceTopic(d.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// Never give up on a record (the default RecordRetries is unbounded):
		// when the broker is away we wait, with the client's jittered
		// exponential backoff (250ms..5s).
		kgo.UnknownTopicRetries(-1),
		kgo.MaxBufferedRecords(d.MaxInFlight + 1),
		kgo.ProducerLinger(5 * time.Millisecond),
	}
	opts = append(opts, d.KafkaOpts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("logwatch: kafka client: %w", err)
	}
	m, err := newMetrics(d.Registerer)
	if err != nil {
		cl.Close()
		return nil, err
	}
	w := &Watcher{
		cfg:     d,
		log:     d.Logger,
		cl:      cl,
		m:       m,
		hot:     map[string]bool{},
		files:   map[fileID]*tfile{},
		initial: map[fileID]fileState{},
		chunk:   make([]byte, readChunk),
		ackCh:   make(chan struct{}, 1),
	}
	for _, a := range d.SaltHotAds {
		w.hot[a] = true
	}
	for _, s := range st {
		w.initial[s.fileID] = s
	}
	w.lastSaved = st
	return w, nil
}

// Run tails until ctx is cancelled, then stops reading, waits (up to
// DrainTimeout) for the broker to acknowledge what was sent, persists the
// positions and closes the producer. It returns nil after a clean shutdown.
func (w *Watcher) Run(ctx context.Context) error {
	defer w.cl.Close()
	defer w.closeFiles()
	w.log.Info("log watcher starting", "globs", w.cfg.Globs, "topic", w.cfg.Topic, "state", w.cfg.StatePath, "known_files", len(w.initial))
	if err := w.checkTopic(ctx); err != nil {
		return err
	}
	if err := w.scan(true); err != nil {
		return err
	}
	poll := time.NewTicker(w.cfg.PollInterval)
	defer poll.Stop()
	commit := time.NewTicker(w.cfg.CommitInterval)
	defer commit.Stop()
	for ctx.Err() == nil {
		w.resend(ctx)
		progressed := false
		for _, f := range w.sorted() {
			n, err := w.readFile(ctx, f)
			if err != nil {
				w.log.Error("read failed; will retry", "file", f.path, "err", err)
			}
			progressed = progressed || n > 0
		}
		select {
		case <-ctx.Done():
		case <-poll.C:
			if err := w.scan(false); err != nil {
				w.log.Error("scan failed; will retry", "err", err)
			}
		case <-commit.C:
			if err := w.persist(); err != nil {
				w.log.Error("persisting positions failed; will retry", "err", err)
			}
			w.reportStall()
		case <-w.ackCh:
		default:
			if !progressed {
				// Idle (or blocked on acknowledgements): wait for something to happen.
				select {
				case <-ctx.Done():
				case <-poll.C:
					if err := w.scan(false); err != nil {
						w.log.Error("scan failed; will retry", "err", err)
					}
				case <-commit.C:
					if err := w.persist(); err != nil {
						w.log.Error("persisting positions failed; will retry", "err", err)
					}
					w.reportStall()
				case <-w.ackCh:
				}
			}
		}
	}
	return w.drain()
}

// checkTopic fails fast when the brokers answer that the topic does not
// exist (otherwise the producer would wait for it forever, silently). A
// broker that does not answer is not an error: the watcher waits for it.
func (w *Watcher) checkTopic(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(w.cfg.Topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(cctx, w.cl)
	if err != nil {
		w.log.Warn("brokers not reachable yet; reading will pause until they are", "brokers", w.cfg.Brokers, "err", err)
		return nil
	}
	if len(resp.Topics) == 1 {
		if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); errors.Is(err, kerr.UnknownTopicOrPartition) {
			return fmt.Errorf("logwatch: topic %q does not exist on %v: create it first", w.cfg.Topic, w.cfg.Brokers)
		} else if err != nil {
			w.log.Warn("topic metadata", "topic", w.cfg.Topic, "err", err)
		}
	}
	return nil
}

// reportStall logs, at most every 10 s, that acknowledgements stopped
// coming: the visible side of back-pressure.
func (w *Watcher) reportStall() {
	w.mu.Lock()
	n, last := w.inflight, w.lastAck
	w.mu.Unlock()
	now := time.Now()
	if n == 0 || now.Sub(last) < 10*time.Second || now.Sub(w.lastStallLog) < 10*time.Second {
		return
	}
	w.lastStallLog = now
	w.log.Warn("broker not acknowledging; reading paused at the in-flight bound, nothing is dropped",
		"unacknowledged", n, "since", last.Format(time.RFC3339))
}

// drain waits for outstanding acknowledgements, re-sending failed records,
// then persists what was acknowledged.
func (w *Watcher) drain() error {
	deadline := time.Now().Add(w.cfg.DrainTimeout)
	dctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	for {
		w.resend(dctx)
		w.mu.Lock()
		n := w.inflight
		w.mu.Unlock()
		if n == 0 || dctx.Err() != nil {
			if n > 0 {
				w.log.Warn("shutdown: broker did not acknowledge every line in time; they will be re-sent after a restart", "unacknowledged", n)
			}
			break
		}
		select {
		case <-w.ackCh:
		case <-dctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := w.persist(); err != nil {
		return err
	}
	w.log.Info("log watcher stopped; positions persisted", "state", w.cfg.StatePath)
	return nil
}

func (w *Watcher) sorted() []*tfile {
	fs := make([]*tfile, 0, len(w.files))
	for _, f := range w.files {
		fs = append(fs, f)
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].path < fs[j].path })
	return fs
}

func (w *Watcher) closeFiles() {
	for _, f := range w.files {
		f.f.Close()
	}
}

// scan matches the globs, opens new files, notices files that left the globs
// and truncations, and closes renamed-away files that are finished.
func (w *Watcher) scan(first bool) error {
	seen := map[fileID]bool{}
	for _, g := range w.cfg.Globs {
		paths, err := filepath.Glob(g)
		if err != nil {
			return fmt.Errorf("logwatch: glob %q: %w", g, err)
		}
		for _, p := range paths {
			fi, err := os.Stat(p)
			if err != nil || !fi.Mode().IsRegular() {
				continue // vanished between glob and stat, or a directory
			}
			id, err := idOf(fi)
			if err != nil {
				return fmt.Errorf("logwatch: %w", err)
			}
			seen[id] = true
			if f, ok := w.files[id]; ok {
				if f.path != p {
					w.m.lag.DeleteLabelValues(f.path)
				}
				f.path, f.gone = p, false
				continue
			}
			if err := w.open(p, false); err != nil {
				w.log.Warn("cannot open file; will retry", "file", p, "err", err)
			}
		}
	}
	if first {
		// Positions of files that left the globs while we were down (renamed
		// by rotation): find them by inode next to where they were, and read
		// their rest, so a rotation during downtime loses nothing.
		for id, st := range w.initial {
			if seen[id] {
				continue
			}
			if p := findInode(filepath.Dir(st.Path), id); p != "" {
				if err := w.open(p, true); err == nil {
					continue
				}
			}
			w.log.Warn("a file from the state file is gone; its unread rest (if any) cannot be sent", "file", st.Path, "offset", st.Offset)
			delete(w.initial, id)
		}
	}
	now := time.Now()
	for id, f := range w.files {
		if !seen[id] && !f.gone {
			f.gone = true
			// Name it by where it went, so its state entry and lag series do not
			// collide with the new file under the old name.
			old := f.path
			if p := findInode(filepath.Dir(old), id); p != "" {
				f.path = p
			} else {
				f.path = old + " (deleted)"
			}
			w.m.lag.DeleteLabelValues(old)
			w.log.Info("file left the globs (rotated or deleted); reading it to its end", "file", old, "now", f.path)
		}
		if err := w.checkTruncation(f); err != nil {
			w.log.Warn("checking file failed", "file", f.path, "err", err)
		}
		w.mu.Lock()
		finished := f.gone && f.readOff >= f.size && f.q.empty() && !f.idleAt.IsZero() && now.Sub(f.idleAt) >= w.cfg.RenamedGrace
		w.mu.Unlock()
		if finished {
			w.log.Info("finished rotated file", "file", f.path, "bytes", f.readOff)
			w.m.lag.DeleteLabelValues(f.path)
			f.f.Close()
			delete(w.files, id)
		}
	}
	return nil
}

// findInode looks in dir for a regular file with inode id.
func findInode(dir string, id fileID) string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		if fid, err := idOf(fi); err == nil && fid == id {
			return filepath.Join(dir, e.Name())
		}
	}
	return ""
}

// open starts tailing path at its persisted position, or at 0 for a file we
// have not seen (nothing written before the watcher started is skipped).
func (w *Watcher) open(path string, gone bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	id, err := idOf(fi)
	if err != nil {
		f.Close()
		return err
	}
	if _, ok := w.files[id]; ok { // renamed into the glob between glob and open
		f.Close()
		return nil
	}
	t := &tfile{id: id, path: path, f: f, q: &ackq{}, size: fi.Size(), gone: gone}
	if t.hd, err = readHead(f, int(min(fi.Size(), headLen))); err != nil {
		f.Close()
		return err
	}
	if st, ok := w.initial[id]; ok {
		delete(w.initial, id)
		cur, err := readHead(f, st.Len)
		switch {
		case err != nil:
			f.Close()
			return err
		case st.Offset > fi.Size() || cur != st.head:
			w.log.Warn("file changed since the persisted position (truncated or a reused inode): reading it from the start", "file", path)
		default:
			t.readOff = st.Offset
			t.q.acked = st.Offset
		}
	}
	w.files[id] = t
	w.log.Info("tailing file", "file", path, "offset", t.readOff, "size", t.size)
	return nil
}

// checkTruncation restarts a file at 0 when it shrank below what we read, or
// when its first bytes changed (truncated and rewritten between two looks).
func (w *Watcher) checkTruncation(f *tfile) error {
	fi, err := f.f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	truncated := size < f.readOff
	if !truncated && f.hd.Len > 0 {
		cur, err := readHead(f.f, f.hd.Len)
		if err != nil {
			return err
		}
		truncated = cur != f.hd
	}
	if truncated {
		w.log.Warn("file truncated (copytruncate rotation?): reading it again from the start", "file", f.path, "was_at", f.readOff, "size", size)
		w.m.truncations.Inc()
		w.mu.Lock()
		f.q = &ackq{} // acknowledgements of the old content no longer move this file's position
		w.mu.Unlock()
		f.readOff, f.line, f.cut = 0, f.line[:0], false
		f.hd = head{}
	}
	if f.hd.Len < headLen && size > int64(f.hd.Len) {
		if f.hd, err = readHead(f.f, int(min(size, headLen))); err != nil {
			return err
		}
	}
	f.size = size
	return nil
}

// readFile reads what is new in f and publishes its complete lines, until
// the file's end or the in-flight bounds. It returns the bytes consumed.
func (w *Watcher) readFile(ctx context.Context, f *tfile) (int, error) {
	total := 0
	if !f.idleAt.IsZero() {
		// It was at its end: make sure it was not truncated meanwhile, before
		// reading what may be new content at an old offset.
		if err := w.checkTruncation(f); err != nil {
			return 0, err
		}
	}
	for ctx.Err() == nil && !w.full() {
		n, err := f.f.ReadAt(w.chunk, f.readOff)
		if n == 0 {
			if err != nil && !errors.Is(err, io.EOF) {
				return total, err
			}
			if f.idleAt.IsZero() {
				f.idleAt = time.Now()
			}
			return total, nil
		}
		f.idleAt = time.Time{}
		data := w.chunk[:n]
		consumed := 0
		for consumed < len(data) && !w.full() {
			i := indexByte(data[consumed:], '\n')
			if i < 0 {
				// No newline yet: keep the partial line, it is sent when complete.
				w.appendLine(f, data[consumed:])
				consumed = len(data)
				break
			}
			w.appendLine(f, data[consumed:consumed+i])
			consumed += i + 1
			end := f.readOff + int64(consumed)
			w.publish(ctx, f, end)
		}
		f.readOff += int64(consumed)
		w.m.bytesRead.Add(float64(consumed))
		total += consumed
	}
	return total, nil
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func (w *Watcher) appendLine(f *tfile, b []byte) {
	if f.cut {
		return
	}
	if room := w.cfg.MaxLineBytes - len(f.line); len(b) > room {
		f.line = append(f.line, b[:room]...)
		f.cut = true
		return
	}
	f.line = append(f.line, b...)
}

func (w *Watcher) full() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.inflight >= w.cfg.MaxInFlight || w.inflightBytes >= w.cfg.MaxInFlightBytes
}

// publish sends f's current line, which ends (newline included) at file
// offset end.
func (w *Watcher) publish(ctx context.Context, f *tfile, end int64) {
	line := f.line
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	cut := f.cut
	f.line, f.cut = f.line[:0], false
	w.m.linesRead.Inc()
	w.mu.Lock()
	q := f.q
	seq := q.push(end)
	if len(line) == 0 {
		// A blank line carries no click: acknowledge it ourselves.
		q.ack(seq)
		w.mu.Unlock()
		w.m.blank.Inc()
		return
	}
	if w.inflight == 0 {
		w.lastAck = time.Now() // the stall clock starts with the first unacknowledged record
	}
	w.inflight++
	w.inflightBytes += int64(len(line))
	w.mu.Unlock()
	if cut {
		w.m.cut.Inc()
	}
	r := &kgo.Record{Value: append([]byte(nil), line...)}
	if c, err := w.parser.Parse(line); err == nil {
		r.Key = w.key(&c)
		r.Timestamp = time.UnixMilli(c.Time)
		if now := time.Now(); r.Timestamp.Sub(now) > maxFutureSkew {
			// Kafka refuses timestamps too far ahead (after.max.ms, 1 h by
			// default) and fails the whole batch: keep the future event time
			// in the value only.
			r.Timestamp = now
		}
	} else {
		w.m.malformed.Inc()
		r.Timestamp = time.Now()
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: click.NoEventTimeHeader, Value: []byte("1")})
	}
	w.produce(r, q, seq)
}

// key is the Kafka key: the ad_id, salted for hot ads. The bucket comes from
// the event_id, so a re-sent click lands in the same partition as before.
func (w *Watcher) key(c *click.Click) []byte {
	if !w.hot[c.AdID] {
		return []byte(c.AdID)
	}
	h := fnv.New32a()
	h.Write([]byte(c.EventID))
	k := make([]byte, 0, len(c.AdID)+5)
	k = append(k, c.AdID...)
	k = append(k, '#')
	return strconv.AppendUint(k, uint64(h.Sum32()%uint32(w.cfg.SaltBuckets)), 10)
}

// produce sends r; its acknowledgement moves q. Failed records go to the
// retry list (promises must not block, so they never produce themselves).
// The produce context is not the run context: records already handed over
// keep going during shutdown.
func (w *Watcher) produce(r *kgo.Record, q *ackq, seq int64) {
	size := int64(len(r.Value))
	w.cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
		w.mu.Lock()
		if err != nil {
			w.m.publishErrors.Inc()
			if errors.Is(err, kerr.InvalidTimestamp) {
				// The broker refuses the event time as record timestamp (too
				// far from its clock): the event time is in the value anyway.
				r.Timestamp = time.Now()
			}
			w.retry = append(w.retry, retryRec{r: &kgo.Record{Key: r.Key, Value: r.Value, Timestamp: r.Timestamp}, q: q, seq: seq, err: err})
			w.mu.Unlock()
			return
		}
		w.inflight--
		w.inflightBytes -= size
		q.ack(seq)
		w.lastAck = time.Now()
		w.mu.Unlock()
		w.m.published.Inc()
		select {
		case w.ackCh <- struct{}{}:
		default:
		}
	})
}

type retryRec struct {
	r   *kgo.Record
	q   *ackq
	seq int64
	err error
}

// resend produces failed records again, after a pause that grows while
// failures keep coming.
func (w *Watcher) resend(ctx context.Context) {
	w.mu.Lock()
	rs := w.retry
	w.retry = nil
	w.mu.Unlock()
	if len(rs) == 0 {
		return
	}
	w.log.Warn("publishing failed; retrying", "records", len(rs), "err", rs[0].err)
	select {
	case <-ctx.Done():
	case <-time.After(time.Second):
	}
	for _, rr := range rs {
		w.produce(rr.r, rr.q, rr.seq)
	}
}

// persist writes the acknowledged position of every file, if it changed.
func (w *Watcher) persist() error {
	var st []fileState
	w.mu.Lock()
	for _, f := range w.files {
		st = append(st, fileState{Path: f.path, fileID: f.id, Offset: f.q.acked, head: f.hd})
		w.m.lag.WithLabelValues(f.path).Set(float64(max(f.size-f.q.acked, 0)))
	}
	w.mu.Unlock()
	// Keep positions we could not match yet (a file missing for a moment).
	for _, s := range w.initial {
		st = append(st, s)
	}
	sort.Slice(st, func(i, j int) bool { return st[i].Path < st[j].Path })
	if equalStates(st, w.lastSaved) {
		return nil
	}
	// A head fingerprint longer than the acknowledged offset is still right:
	// appends never change a file's first bytes.
	if err := saveState(w.cfg.StatePath, st); err != nil {
		return err
	}
	w.lastSaved = st
	w.m.commits.Inc()
	return nil
}

func equalStates(a, b []fileState) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
