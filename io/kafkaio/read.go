package kafkaio

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"reflect"
	"slices"
	"time"

	"github.com/adclick/adclick/domain/click"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/sdf"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func init() {
	register.DoFn3x1[context.Context, []byte, func(partitionSpec), error](&discoverFn{})
	register.Emitter1[partitionSpec]()
	register.DoFn5x2[context.Context, *estimator, *sdf.LockRTracker, partitionSpec,
		func(beam.EventTime, click.Lines), sdf.ProcessContinuation, error](&readFn{})
	register.Emitter2[beam.EventTime, click.Lines]()
	beam.RegisterType(reflect.TypeOf((*partitionSpec)(nil)).Elem())
	beam.RegisterType(reflect.TypeOf((*Restriction)(nil)).Elem())
	beam.RegisterCoder(reflect.TypeOf((*Restriction)(nil)).Elem(), encodeRestriction, decodeRestriction)
	beam.RegisterType(reflect.TypeOf((*click.Lines)(nil)).Elem())
}

// partitionSpec is one partition to read, resolved when the pipeline starts:
// where to start, where to stop (bounded mode) and the estimator state
// restored from the committed offset's metadata.
type partitionSpec struct {
	Partition int32
	Start     int64
	End       int64
	State     []byte
}

// Read reads the topic as an unbounded (or, with EndOffsets, bounded)
// PCollection of click.Lines, one element per fetched batch of records of
// one partition. It panics on an invalid configuration, like Beam's own
// constructors; use TryRead to get the error instead.
func Read(s beam.Scope, cfg ReadConfig) beam.PCollection {
	out, err := TryRead(s, cfg)
	if err != nil {
		panic(err)
	}
	return out
}

// TryRead is Read returning configuration errors. Partitions are listed when
// the pipeline starts, not at construction, so building a pipeline needs no
// broker.
func TryRead(s beam.Scope, cfg ReadConfig) (beam.PCollection, error) {
	if err := cfg.Validate(); err != nil {
		return beam.PCollection{}, err
	}
	c := cfg.withDefaults()
	s = s.Scope("kafkaio.Read")
	id := newReadID(c.Topic)
	parts := beam.ParDo(s, &discoverFn{Cfg: c, ReadID: id}, beam.Impulse(s))
	return beam.ParDo(s, &readFn{Cfg: c, ReadID: id}, parts), nil
}

// newReadID names one Read transform of one pipeline: the key its partitions
// share their watermarks under (readWatermarks).
func newReadID(topic string) string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return topic + "/" + hex.EncodeToString(b[:])
}

func newClient(brokers []string, dial time.Duration, opts ...kgo.Opt) (*kgo.Client, error) {
	base := []kgo.Opt{kgo.SeedBrokers(brokers...), kgo.DialTimeout(dial)}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafkaio: creating client for %v: %w", brokers, err)
	}
	return cl, nil
}

// discoverFn lists the partitions and resolves each one's start, end and
// restored estimator.
type discoverFn struct {
	Cfg    ReadConfig
	ReadID string
}

func (f *discoverFn) ProcessElement(ctx context.Context, _ []byte, emit func(partitionSpec)) error {
	specs, err := discover(ctx, &f.Cfg)
	if err != nil {
		return err
	}
	reads := f.Cfg.Coordination.shared(f.ReadID)
	for _, s := range specs {
		// Every partition holds the read's watermark from the start, also
		// before its first bundle ran.
		if st, err := decodeState(s.State); err == nil && reads != nil {
			reads.set(s.Partition, st.WM)
		}
		emit(s)
	}
	return nil
}

// discover retries transient broker errors (a group coordinator still
// loading, a leader moving) until RequestTimeout.
func discover(ctx context.Context, c *ReadConfig) ([]partitionSpec, error) {
	cl, err := newClient(c.Brokers, c.DialTimeout)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(ctx, c.RequestTimeout)
	defer cancel()
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		specs, err := discoverOnce(ctx, adm, c)
		if err == nil || !retriable(err) {
			return specs, err
		}
		slog.Default().Debug("kafkaio: retrying partition discovery", "topic", c.Topic, "err", err)
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
	}
}

func retriable(err error) bool {
	var ke *kerr.Error
	// A missing topic is retriable to Kafka (it may be being created) but to
	// a pipeline start it is a configuration error worth failing fast on.
	return errors.As(err, &ke) && ke.Retriable && ke != kerr.UnknownTopicOrPartition
}

func discoverOnce(ctx context.Context, adm *kadm.Client, c *ReadConfig) ([]partitionSpec, error) {

	ends, err := adm.ListEndOffsets(ctx, c.Topic)
	if err != nil {
		return nil, fmt.Errorf("kafkaio: listing end offsets of %q: %w", c.Topic, err)
	}
	starts, err := adm.ListStartOffsets(ctx, c.Topic)
	if err != nil {
		return nil, fmt.Errorf("kafkaio: listing start offsets of %q: %w", c.Topic, err)
	}
	if e, ok := ends.Lookup(c.Topic, -1); ok && e.Err != nil {
		return nil, fmt.Errorf("kafkaio: topic %q does not exist or is unreadable: %w", c.Topic, e.Err)
	}
	var all []int32
	for p, o := range ends[c.Topic] {
		if o.Err != nil {
			return nil, fmt.Errorf("kafkaio: end offset of %s/%d: %w", c.Topic, p, o.Err)
		}
		all = append(all, p)
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("kafkaio: topic %q does not exist or has no partitions", c.Topic)
	}
	slices.Sort(all)
	parts := all
	if len(c.Partitions) > 0 {
		parts = c.Partitions
		for _, p := range parts {
			if _, ok := ends[c.Topic][p]; !ok {
				return nil, fmt.Errorf("kafkaio: topic %q has no partition %d (it has %v)", c.Topic, p, all)
			}
		}
	}
	var committed kadm.OffsetResponses
	if c.Group != "" {
		committed, err = adm.FetchOffsetsForTopics(ctx, c.Group, c.Topic)
		if err == nil {
			err = committed.Error()
		}
		if errors.Is(err, kerr.GroupIDNotFound) { // some brokers say so for a group that never committed
			committed, err = nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("kafkaio: fetching offsets of group %q: %w", c.Group, err)
		}
	}
	specs := make([]partitionSpec, 0, len(parts))
	for _, p := range parts {
		st := newPartState()
		spec := partitionSpec{Partition: p, End: unboundedEnd}
		if o, ok := committed.Lookup(c.Topic, p); ok && o.At >= 0 {
			spec.Start = o.At
			rs, err := restoreState(o.Metadata)
			switch {
			case err == nil:
				st = rs
			case c.AllowMissingMeta:
				slog.Default().Warn("kafkaio: committed offset without our metadata; starting with a fresh watermark",
					"topic", c.Topic, "partition", p, "offset", o.At, "err", err)
			default:
				return nil, fmt.Errorf("kafkaio: group %q, %s/%d: %w (set AllowMissingMeta to start anyway)", c.Group, c.Topic, p, err)
			}
		} else if c.StartOffset == Latest {
			spec.Start = ends[c.Topic][p].Offset
		} else {
			so, ok := starts.Lookup(c.Topic, p)
			if !ok || so.Err != nil {
				return nil, fmt.Errorf("kafkaio: start offset of %s/%d: %v", c.Topic, p, so.Err)
			}
			spec.Start = so.Offset
		}
		if c.EndOffsets {
			spec.End = max(ends[c.Topic][p].Offset, spec.Start)
		}
		spec.State = encodeState(st)
		specs = append(specs, spec)
	}
	return specs, nil
}

// maxClients bounds the partition clients one DoFn instance keeps between
// calls; each buffers at most about one fetch (FetchMaxBytes).
const maxClients = 8

// partClient is a client consuming one partition, kept between calls so that
// a resumed restriction continues from the client's buffer instead of
// re-fetching. next is the offset the client will deliver next.
type partClient struct {
	cl   *kgo.Client
	adm  *kadm.Client
	next int64
	held []*kgo.Record // fetched, not yet read: the next bundle starts with them
}

// Beam metrics of the reader (a DoFn cannot take a Prometheus registerer: it
// is serialized to the workers; the runner exports these).
var (
	mRecords      = beam.NewCounter("kafkaio", "records_read")
	mBatches      = beam.NewCounter("kafkaio", "batches_emitted")
	mCommits      = beam.NewCounter("kafkaio", "commits")
	mCommitErrors = beam.NewCounter("kafkaio", "commit_errors")
	mDataLoss     = beam.NewCounter("kafkaio", "data_loss_events")
)

// readFn is the splittable DoFn: one element and restriction per partition.
type readFn struct {
	Cfg    ReadConfig
	ReadID string

	p       params
	log     *slog.Logger
	clients map[int32]*partClient
}

func (fn *readFn) Setup() {
	fn.p = fn.Cfg.params()
	// A DoFn is serialized to the worker and cannot carry a logger: it logs
	// through the worker process's default one.
	fn.log = slog.Default().With("component", "kafkaio.Read", "topic", fn.Cfg.Topic)
	fn.clients = map[int32]*partClient{}
}

func (fn *readFn) Teardown() {
	for p := range fn.clients {
		fn.drop(p)
	}
}

func (fn *readFn) CreateInitialRestriction(p partitionSpec) Restriction {
	return Restriction{Start: p.Start, End: p.End}
}

func (fn *readFn) SplitRestriction(_ partitionSpec, r Restriction) []Restriction {
	return []Restriction{r}
}

func (fn *readFn) RestrictionSize(_ partitionSpec, r Restriction) float64 {
	if r.End == unboundedEnd {
		return 1
	}
	return float64(r.End - r.Start)
}

func (fn *readFn) CreateTracker(r Restriction) *sdf.LockRTracker {
	return sdf.NewLockRTracker(newTracker(r))
}

// TruncateRestriction runs on drain: an unbounded read stops where it is, a
// bounded one finishes.
func (fn *readFn) TruncateRestriction(rt *sdf.LockRTracker, _ partitionSpec) Restriction {
	r := rt.GetRestriction().(Restriction)
	if r.End == unboundedEnd {
		return Restriction{Start: r.Start, End: r.Start}
	}
	return r
}

func (fn *readFn) InitialWatermarkEstimatorState(_ beam.EventTime, _ Restriction, p partitionSpec) []byte {
	return p.State
}

func (fn *readFn) CreateWatermarkEstimator(state []byte) *estimator {
	s, err := decodeState(state)
	if err != nil {
		// Surfaced by ProcessElement; the watermark stays at the minimum meanwhile.
		return &estimator{s: newPartState(), err: err}
	}
	return &estimator{s: s}
}

func (fn *readFn) WatermarkEstimatorState(e *estimator) []byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	return encodeState(e.s)
}

func (fn *readFn) client(p int32, start int64) (*partClient, error) {
	if c, ok := fn.clients[p]; ok {
		if c.next == start {
			return c, nil
		}
		fn.drop(p)
	}
	if len(fn.clients) >= maxClients {
		for q := range fn.clients {
			fn.drop(q)
			break
		}
	}
	cl, err := newClient(fn.Cfg.Brokers, fn.Cfg.DialTimeout,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{fn.Cfg.Topic: {p: kgo.NewOffset().At(start)}}),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(fn.Cfg.FetchMaxBytes),
		kgo.FetchMaxPartitionBytes(fn.Cfg.FetchMaxBytes),
		kgo.FetchMaxWait(fn.Cfg.PollTimeout),
	)
	if err != nil {
		return nil, err
	}
	c := &partClient{cl: cl, adm: kadm.NewClient(cl), next: start}
	fn.clients[p] = c
	return c, nil
}

func (fn *readFn) drop(p int32) {
	if c, ok := fn.clients[p]; ok {
		c.cl.Close()
		delete(fn.clients, p)
	}
}

// ProcessElement reads one partition from the restriction's start until a time
// or record budget is spent, or the watermark moved MaxBundleAdvance, then
// checkpoints itself: portable runners never ask an unbounded SDF to split,
// and the runner learns the watermark only at checkpoints.
func (fn *readFn) ProcessElement(ctx context.Context, we *estimator, rt *sdf.LockRTracker,
	p partitionSpec, emit func(beam.EventTime, click.Lines)) (sdf.ProcessContinuation, error) {
	if we.err != nil {
		return sdf.StopProcessing(), we.err
	}
	we.reads, we.part = fn.Cfg.Coordination.shared(fn.ReadID), p.Partition
	rest := rt.GetRestriction().(Restriction)
	if rest.Start >= rest.End {
		rt.TryClaim(rest.End)
		we.done()
		return sdf.StopProcessing(), nil
	}
	start := time.Now()
	we.mu.Lock()
	we.s.begin(rest.Start, start.UnixMilli())
	limit := int64(mtime.MaxTimestamp)
	if we.s.WM > minWM {
		limit = we.s.WM + fn.Cfg.MaxBundleAdvance.Milliseconds()
	}
	we.mu.Unlock()

	c, err := fn.client(p.Partition, rest.Start)
	if err != nil {
		return sdf.StopProcessing(), err
	}
	deadline := start.Add(fn.Cfg.CheckpointEvery)
	read, empty, capped := 0, false, false
	var batches []click.Lines
	for !capped {
		var recs []*kgo.Record
		if len(c.held) > 0 {
			recs, c.held = c.held, nil
		} else {
			wait := min(fn.Cfg.PollTimeout, time.Until(deadline))
			if wait < time.Millisecond {
				wait = time.Millisecond
			}
			pctx, cancel := context.WithTimeout(ctx, wait)
			fs := c.cl.PollRecords(pctx, fn.Cfg.MaxPollRecords)
			cancel()
			if err := ctx.Err(); err != nil {
				fn.drop(p.Partition)
				return sdf.StopProcessing(), fmt.Errorf("kafkaio: reading %s/%d: %w", fn.Cfg.Topic, p.Partition, err)
			}
			for _, fe := range fs.Errors() {
				if errors.Is(fe.Err, context.DeadlineExceeded) || errors.Is(fe.Err, context.Canceled) {
					continue
				}
				var loss *kgo.ErrDataLoss
				if errors.As(fe.Err, &loss) {
					// The broker lost records we had not read (or rewrote offsets we
					// had): nothing to re-read, so say so loudly and go on.
					fn.log.Error("kafkaio: broker reports data loss", "partition", fe.Partition, "err", fe.Err)
					mDataLoss.Inc(ctx, 1)
					continue
				}
				fn.drop(p.Partition)
				return sdf.StopProcessing(), fmt.Errorf("kafkaio: fetching %s/%d: %w", fe.Topic, fe.Partition, fe.Err)
			}
			recs = fs.Records()
		}
		if len(recs) > 0 && recs[0].Offset < c.next {
			// Offsets reused after a log truncation: they were claimed already.
			i := 0
			for i < len(recs) && recs[i].Offset < c.next {
				i++
			}
			fn.log.Error("kafkaio: skipping records at offsets already read", "partition", p.Partition,
				"from", recs[0].Offset, "count", i)
			recs = recs[i:]
		}
		now := time.Now().UnixMilli()
		if len(recs) == 0 {
			empty = true
			if read > 0 {
				// Checkpoint before the idle rule may move the watermark: the
				// records read in this bundle must not see it jump.
				break
			}
			we.mu.Lock()
			we.s.idle(&fn.p, now)
			we.mu.Unlock()
		} else {
			empty = false
			k := len(recs)
			for k > 0 && recs[k-1].Offset >= rest.End {
				k--
			}
			if k > 0 {
				var ok bool
				var n int
				batches, n, ok = fn.observe(we, rt, recs[:k], now, &limit, read == 0, batches[:0])
				if !ok {
					fn.drop(p.Partition)
					return sdf.StopProcessing(), rt.GetError()
				}
				for _, b := range batches {
					ts := mtime.Time(b.Watermark)
					if fn.Cfg.NoLateness {
						b.Watermark = click.NoWatermark
					}
					emit(ts, b)
				}
				if n < k {
					c.held = recs[n:] // includes any past the end: they are cut again next time
					k, capped = n, true
				}
				// k is 0 when the poll's first record would move the watermark
				// past the bundle's cap (a jump in event time after records this
				// bundle already read): everything waits for the next bundle.
				if k > 0 {
					read += k
					c.next = recs[k-1].Offset + 1
					mRecords.Inc(ctx, int64(k))
					mBatches.Inc(ctx, int64(len(batches)))
				}
			}
			if !capped && (k < len(recs) || recs[len(recs)-1].Offset+1 >= rest.End) {
				rt.TryClaim(rest.End) // bounded read complete
				fn.drop(p.Partition)
				we.done()
				return sdf.StopProcessing(), nil
			}
		}
		if fn.Cfg.Group != "" {
			fn.maybeCommit(ctx, c, we, p.Partition, now)
		}
		if read >= fn.Cfg.CheckpointAfter || !time.Now().Before(deadline) {
			break
		}
	}
	rt.Mu.Lock()
	rt.Rt.(*tracker).checkpoint = true
	rt.Mu.Unlock()
	if empty && !capped {
		return sdf.ResumeProcessingIn(fn.Cfg.IdleResume), nil
	}
	return sdf.ResumeProcessingIn(0), nil
}

// observe claims a prefix of recs, feeds it to the estimator and cuts it into
// batches of equal watermark. It stops before the first record that would
// move the watermark past limit, unless that record is the bundle's first
// (first: nothing read in this bundle yet), and returns how many records it
// took. It holds the estimator's lock so the state the SDK saves at a
// checkpoint always matches the claimed position.
func (fn *readFn) observe(we *estimator, rt *sdf.LockRTracker, recs []*kgo.Record, now int64, limit *int64, first bool,
	out []click.Lines) ([]click.Lines, int, bool) {
	we.mu.Lock()
	defer we.mu.Unlock()
	n := len(recs)
	for i, r := range recs {
		if untimed(r) {
			continue
		}
		ts := r.Timestamp.UnixMilli()
		if *limit == int64(mtime.MaxTimestamp) {
			// A fresh partition: the cap counts from its first timed record.
			*limit = fn.p.quant(min(ts, now+fn.p.skew)-fn.p.delay) + fn.Cfg.MaxBundleAdvance.Milliseconds()
			continue
		}
		if (i > 0 || !first) && we.s.wouldExceed(&fn.p, ts, now, *limit) {
			n = i
			break
		}
	}
	if n == 0 {
		return out, 0, true
	}
	recs = recs[:n]
	if !rt.TryClaim(recs[len(recs)-1].Offset) {
		return out, 0, false
	}
	we.s.dataSeen(now)
	var cur click.Lines
	for i, r := range recs {
		var w int64
		if untimed(r) {
			w = we.s.observeUntimed(r.Offset)
		} else {
			w = we.s.observe(&fn.p, r.Offset, r.Timestamp.UnixMilli(), now)
		}
		if i > 0 && w != cur.Watermark {
			out = append(out, cur)
			cur = click.Lines{Lines: make([][]byte, 0, len(recs)-i)}
		}
		if cur.Lines == nil {
			cur.Lines = make([][]byte, 0, len(recs)-i)
		}
		cur.Watermark = w
		cur.Lines = append(cur.Lines, r.Value)
	}
	return append(out, cur), n, true
}

func untimed(r *kgo.Record) bool {
	for _, h := range r.Headers {
		if h.Key == click.NoEventTimeHeader {
			return true
		}
	}
	return false
}

func (fn *readFn) maybeCommit(ctx context.Context, c *partClient, we *estimator, p int32, now int64) {
	final := int64(math.MaxInt64)
	if fn.Cfg.Gate.ID != "" {
		final = fn.Cfg.Gate.progress()
	}
	we.mu.Lock()
	if we.reads != nil {
		we.s.shared = we.reads.min()
	}
	off, meta, ok := we.s.commitDue(&fn.p, now, final)
	we.mu.Unlock()
	if !ok {
		return
	}
	fn.log.Debug("kafkaio: committing safe offset", "partition", p, "offset", off, "metadata", meta, "sinks_passed", final)
	if err := commit(ctx, c.adm, fn.Cfg.Group, fn.Cfg.Topic, p, off, meta, fn.Cfg.RequestTimeout); err != nil {
		// Safe to go on: the previous commit stays, and it is further back.
		fn.log.Warn("kafkaio: commit failed", "partition", p, "offset", off, "err", err)
		mCommitErrors.Inc(ctx, 1)
		return
	}
	mCommits.Inc(ctx, 1)
	we.mu.Lock()
	we.s.committed(off)
	we.mu.Unlock()
}

func commit(ctx context.Context, adm *kadm.Client, group, topic string, p int32, off int64, meta string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: topic, Partition: p, At: off, LeaderEpoch: -1, Metadata: meta})
	rs, err := adm.CommitOffsets(ctx, group, os)
	if err == nil {
		err = rs.Error()
	}
	if err != nil {
		return fmt.Errorf("kafkaio: committing %s/%d@%d for group %q: %w", topic, p, off, group, err)
	}
	return nil
}
