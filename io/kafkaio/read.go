package kafkaio

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strconv"
	"time"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/io/kafkasec"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/mtime"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/sdf"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/twmb/franz-go/pkg/kadm"
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

// newClient is where every client of the package is built: the brokers,
// the dial timeout and the connection's security (whose files and password
// are read now, on the worker), then opts.
func newClient(brokers []string, dial time.Duration, sec kafkasec.Security, opts ...kgo.Opt) (*kgo.Client, error) {
	secOpts, err := sec.Opts()
	if err != nil {
		return nil, fmt.Errorf("kafkaio: client for %v: %w", brokers, err)
	}
	base := append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.DialTimeout(dial)}, secOpts...)
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafkaio: creating client for %v: %w", brokers, err)
	}
	return cl, nil
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
	high int64         // the partition's end offset at the last fetch; 0 before
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

// Per-partition Beam gauges of the reader, set at each checkpoint: the name
// is the prefix and the partition number (watermark_ms_p3).
const (
	MetricWatermarkPrefix = "watermark_ms_p" // the partition's watermark, Unix ms
	MetricLagPrefix       = "lag_records_p"  // records between the reader's position and the partition's end
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
	cl, err := newClient(fn.Cfg.Brokers, fn.Cfg.DialTimeout, fn.Cfg.Security,
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
	limit := fn.begin(we, rest.Start, start)
	c, err := fn.client(p.Partition, rest.Start)
	if err != nil {
		return sdf.StopProcessing(), err
	}
	deadline := start.Add(fn.Cfg.CheckpointEvery)
	read, empty, capped := 0, false, false
	var batches []click.Lines
	for !capped {
		recs, err := fn.poll(ctx, c, p.Partition, deadline)
		if err != nil {
			fn.drop(p.Partition)
			return sdf.StopProcessing(), err
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
				n, ok := fn.emitRecords(ctx, we, rt, c, recs[:k], now, &limit, read == 0, &batches, emit)
				if !ok {
					fn.drop(p.Partition)
					return sdf.StopProcessing(), rt.GetError()
				}
				if n < k {
					c.held = recs[n:] // includes any past the end: they are cut again next time
					k, capped = n, true
				}
				read += k
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
	fn.reportProgress(ctx, we, c, p.Partition)
	rt.Mu.Lock()
	rt.Rt.(*tracker).checkpoint = true
	rt.Mu.Unlock()
	if empty && !capped {
		return sdf.ResumeProcessingIn(fn.Cfg.IdleResume), nil
	}
	return sdf.ResumeProcessingIn(0), nil
}

// reportProgress sets the partition's watermark and lag gauges, which the
// process that submitted the job reads from the runner (runners.JobMetrics).
func (fn *readFn) reportProgress(ctx context.Context, we *estimator, c *partClient, part int32) {
	we.mu.Lock()
	wm := we.s.WM
	we.mu.Unlock()
	p := strconv.Itoa(int(part))
	if wm > minWM {
		beam.NewGauge("kafkaio", MetricWatermarkPrefix+p).Set(ctx, wm)
	}
	if c.high > 0 {
		beam.NewGauge("kafkaio", MetricLagPrefix+p).Set(ctx, max(0, c.high-c.next))
	}
}

// begin starts a bundle at offset start and returns how far its watermark
// may move (MaxBundleAdvance past the current one).
func (fn *readFn) begin(we *estimator, start int64, now time.Time) (limit int64) {
	we.mu.Lock()
	defer we.mu.Unlock()
	we.s.begin(start, now.UnixMilli())
	if we.s.WM > minWM {
		return we.s.WM + fn.Cfg.MaxBundleAdvance.Milliseconds()
	}
	return int64(mtime.MaxTimestamp)
}

// poll returns the partition's next records: those held back by the last
// bundle's cap, else one poll of at most PollTimeout (and never past the
// bundle's deadline). Records at offsets already read (a log truncation
// reused them) are dropped; the broker reporting data loss is logged and
// counted, not fatal.
func (fn *readFn) poll(ctx context.Context, c *partClient, part int32, deadline time.Time) ([]*kgo.Record, error) {
	var recs []*kgo.Record
	if len(c.held) > 0 {
		recs, c.held = c.held, nil
	} else {
		wait := max(min(fn.Cfg.PollTimeout, time.Until(deadline)), time.Millisecond)
		pctx, cancel := context.WithTimeout(ctx, wait)
		fs := c.cl.PollRecords(pctx, fn.Cfg.MaxPollRecords)
		cancel()
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if p.Err == nil {
				c.high = p.HighWatermark
			}
		})
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("kafkaio: reading %s/%d: %w", fn.Cfg.Topic, part, err)
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
			return nil, fmt.Errorf("kafkaio: fetching %s/%d: %w", fe.Topic, fe.Partition, fe.Err)
		}
		recs = fs.Records()
	}
	if len(recs) > 0 && recs[0].Offset < c.next {
		// Offsets reused after a log truncation: they were claimed already.
		i := 0
		for i < len(recs) && recs[i].Offset < c.next {
			i++
		}
		fn.log.Error("kafkaio: skipping records at offsets already read", "partition", part,
			"from", recs[0].Offset, "count", i)
		recs = recs[i:]
	}
	return recs, nil
}

// emitRecords claims and emits recs as batches (observe) and returns how
// many of them it took: fewer than all when the bundle's watermark cap
// stopped it. It is 0 when the first record would move the watermark past
// the cap (a jump in event time after records this bundle already read):
// everything then waits for the next bundle. ok is false when a claim
// failed (rt.GetError says why).
func (fn *readFn) emitRecords(ctx context.Context, we *estimator, rt *sdf.LockRTracker, c *partClient, recs []*kgo.Record,
	now int64, limit *int64, first bool, batches *[]click.Lines, emit func(beam.EventTime, click.Lines)) (n int, ok bool) {
	*batches, n, ok = fn.observe(we, rt, recs, now, limit, first, (*batches)[:0])
	if !ok {
		return 0, false
	}
	for _, b := range *batches {
		ts := mtime.Time(b.Watermark)
		if fn.Cfg.NoLateness {
			b.Watermark = click.NoWatermark
		}
		emit(ts, b)
	}
	if n > 0 {
		c.next = recs[n-1].Offset + 1
		mRecords.Inc(ctx, int64(n))
		mBatches.Inc(ctx, int64(len(*batches)))
	}
	return n, true
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
		ts, ok := eventTime(r)
		if !ok {
			continue
		}
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
		if ts, ok := eventTime(r); ok {
			w = we.s.observe(&fn.p, r.Offset, ts, now)
		} else {
			w = we.s.observeUntimed(r.Offset)
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

// eventTime is a raw record's event time (Unix ms), which the watermark is
// built from: its click.EventTimeHeader; for a record without one (published
// before the header existed, into a CreateTime topic), its timestamp. ok is
// false for a record without an event time: a line that is not a click
// (click.NoEventTimeHeader), a header that is not a time, or a timestamp the
// broker stamped (LogAppendTime) on a record without the header — its clock
// says when the record arrived, not when the click happened.
func eventTime(r *kgo.Record) (ms int64, ok bool) {
	for _, h := range r.Headers {
		switch h.Key {
		case click.NoEventTimeHeader:
			return 0, false
		case click.EventTimeHeader:
			return click.ParseEventTime(h.Value)
		}
	}
	if r.Attrs.TimestampType() == 1 { // LogAppendTime
		return 0, false
	}
	return r.Timestamp.UnixMilli(), true
}
