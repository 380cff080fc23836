// Package logwatch is a standalone service, the log watcher of the design
// (§4 ①): it tails click log files (JSON lines), publishes every line to the
// raw Kafka topic keyed by ad_id, and remembers how far it got so that a
// restart loses nothing. It uses no Beam.
//
// Files: config.go (Config and its defaults), tail.go (the tailer: globs,
// rotation, truncation, reading lines), publish.go (the publisher: keys,
// record timestamps, acknowledgements and retries), ackq.go (acknowledged
// prefix per file), state.go (the persisted positions), metrics.go.
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
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/adclick/adclick/domain/click"
)

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
	secOpts, err := d.Security.Opts()
	if err != nil {
		return nil, fmt.Errorf("logwatch: %w", err)
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
	opts = append(append(opts, secOpts...), d.KafkaOpts...)
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
