package storeio

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/sdf"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/io/store/backend"
)

func init() {
	register.DoFn3x1[context.Context, []byte, func(ReadPlan), error](&planFn{})
	register.Emitter1[ReadPlan]()
	register.DoFn4x1[context.Context, *sdf.LockRTracker, ReadPlan, func(click.Batch), error](&readRawFn{})
	register.Emitter1[click.Batch]()
	beam.RegisterType(reflect.TypeOf((*ReadPlan)(nil)).Elem())
	beam.RegisterType(reflect.TypeOf((*ShardSet)(nil)).Elem())
	beam.RegisterCoder(reflect.TypeOf((*ShardSet)(nil)).Elem(), encodeShardSet, decodeShardSet)
}

// DefaultReadBatch is how many clicks ReadRaw puts in one click.Batch.
const DefaultReadBatch = 1024

// ReadOptions tune ReadRaw.
type ReadOptions struct {
	Shards int // how many store shards to cut the range into (default 16)
	Batch  int // clicks per emitted batch (default DefaultReadBatch)
}

// ReadRaw reads every stored click with event time in [from, to) as
// click.Batch batches: a bounded source. One DoFn plans the read
// (store.RawShards), a splittable DoFn reads it with a ShardSet restriction
// that the runner splits by shard, so shards are read in parallel.
func ReadRaw(s beam.Scope, cfg backend.Config, from, to time.Time, o ReadOptions) (beam.PCollection, error) {
	if err := cfg.Validate(); err != nil {
		return beam.PCollection{}, err
	}
	if to.Before(from) {
		return beam.PCollection{}, fmt.Errorf("%w: storeio: read range ends before it starts", store.ErrInvalid)
	}
	if o.Shards <= 0 {
		o.Shards = 16
	}
	if o.Batch <= 0 {
		o.Batch = DefaultReadBatch
	}
	s = s.Scope("storeio.ReadRaw")
	plans := beam.ParDo(s, &planFn{Cfg: cfg, FromNS: from.UnixNano(), ToNS: to.UnixNano(), Shards: o.Shards}, beam.Impulse(s))
	return beam.ParDo(s, &readRawFn{Cfg: cfg, Batch: o.Batch}, plans), nil
}

// ShardSpec is a store.Shard in a form Beam can encode.
type ShardSpec struct {
	FromNS, ToNS int64
	Token        []byte
}

func (s ShardSpec) shard() store.Shard {
	return store.Shard{From: time.Unix(0, s.FromNS).UTC(), To: time.Unix(0, s.ToNS).UTC(), Token: s.Token}
}

// ReadPlan is the element the reading SDF gets: the shards of the range.
type ReadPlan struct {
	Shards []ShardSpec
}

type planFn struct {
	Cfg          backend.Config
	FromNS, ToNS int64
	Shards       int
	st           store.Store
}

func (fn *planFn) Setup(ctx context.Context) error {
	st, err := backend.Open(ctx, fn.Cfg, nil)
	fn.st = st
	return err
}

func (fn *planFn) Teardown() {
	if fn.st != nil {
		fn.st.Close()
	}
}

func (fn *planFn) ProcessElement(ctx context.Context, _ []byte, emit func(ReadPlan)) error {
	shards, err := fn.st.RawShards(ctx, time.Unix(0, fn.FromNS), time.Unix(0, fn.ToNS), fn.Shards)
	if err != nil {
		return fmt.Errorf("storeio: plan raw read: %w", err)
	}
	p := ReadPlan{Shards: make([]ShardSpec, len(shards))}
	for i, sh := range shards {
		p.Shards[i] = ShardSpec{FromNS: sh.From.UnixNano(), ToNS: sh.To.UnixNano(), Token: sh.Token}
	}
	emit(p)
	return nil
}

// ShardSet is ReadRaw's restriction: a list of store shards, claimed in order
// by position. It is a restriction of its own because a store shard is an
// opaque backend position (a Cassandra token range spans the whole int64
// ring, whose width Beam's offsetrange cannot hold), so the unit of splitting
// is the shard.
type ShardSet struct {
	Shards []ShardSpec
}

func encodeShardSet(r ShardSet) []byte {
	b := binary.AppendUvarint(nil, uint64(len(r.Shards)))
	for _, s := range r.Shards {
		b = binary.AppendVarint(b, s.FromNS)
		b = binary.AppendVarint(b, s.ToNS)
		b = binary.AppendUvarint(b, uint64(len(s.Token)))
		b = append(b, s.Token...)
	}
	return b
}

func decodeShardSet(b []byte) (ShardSet, error) {
	bad := errors.New("storeio: corrupt shard set")
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)) {
		return ShardSet{}, bad
	}
	b = b[w:]
	r := ShardSet{Shards: make([]ShardSpec, 0, n)}
	for i := uint64(0); i < n; i++ {
		var s ShardSpec
		if s.FromNS, w = binary.Varint(b); w <= 0 {
			return ShardSet{}, bad
		}
		b = b[w:]
		if s.ToNS, w = binary.Varint(b); w <= 0 {
			return ShardSet{}, bad
		}
		b = b[w:]
		l, w := binary.Uvarint(b)
		if w <= 0 || uint64(len(b)-w) < l {
			return ShardSet{}, bad
		}
		s.Token = append([]byte(nil), b[w:w+int(l)]...)
		b = b[w+int(l):]
		r.Shards = append(r.Shards, s)
	}
	return r, nil
}

// shardTracker claims positions 0..len-1 of a ShardSet.
type shardTracker struct {
	rest    ShardSet
	claimed int // last claimed position, -1 before any
	stopped bool
	err     error
}

func newShardTracker(r ShardSet) *shardTracker { return &shardTracker{rest: r, claimed: -1} }

func (t *shardTracker) TryClaim(p any) bool {
	if t.stopped || t.err != nil {
		return false
	}
	pos, ok := p.(int)
	if !ok {
		t.err = fmt.Errorf("storeio: claim of %T, want int", p)
		return false
	}
	if pos != t.claimed+1 {
		t.err = fmt.Errorf("storeio: claim of shard %d after %d: shards are claimed in order", pos, t.claimed)
		return false
	}
	if pos >= len(t.rest.Shards) {
		t.stopped = true
		return false
	}
	t.claimed = pos
	return true
}

func (t *shardTracker) GetError() error { return t.err }

// TrySplit keeps the claimed shards and about (1-fraction) of the rest in the
// primary; the residual gets the others. It never splits inside a shard.
func (t *shardTracker) TrySplit(fraction float64) (primary, residual any, err error) {
	if t.stopped || t.err != nil || fraction < 0 || fraction >= 1 {
		return t.rest, nil, nil
	}
	next := t.claimed + 1
	left := len(t.rest.Shards) - next
	if left <= 0 {
		return t.rest, nil, nil
	}
	at := next + int(math.Ceil(fraction*float64(left)))
	if at >= len(t.rest.Shards) {
		return t.rest, nil, nil
	}
	res := ShardSet{Shards: append([]ShardSpec(nil), t.rest.Shards[at:]...)}
	t.rest = ShardSet{Shards: t.rest.Shards[:at]}
	return t.rest, res, nil
}

func (t *shardTracker) GetProgress() (done, remaining float64) {
	return float64(t.claimed + 1), float64(len(t.rest.Shards) - t.claimed - 1)
}

func (t *shardTracker) IsDone() bool {
	return t.err == nil && (t.stopped || t.claimed >= len(t.rest.Shards)-1)
}

func (t *shardTracker) GetRestriction() any { return t.rest }

// IsBounded: a shard set is finite.
func (t *shardTracker) IsBounded() bool { return true }

type readRawFn struct {
	Cfg   backend.Config
	Batch int
	st    store.Store
	read  beam.Counter
}

func (fn *readRawFn) Setup(ctx context.Context) error {
	fn.read = beam.NewCounter("adclick.storeio", "raw_clicks_read")
	st, err := backend.Open(ctx, fn.Cfg, nil)
	fn.st = st
	return err
}

func (fn *readRawFn) Teardown() {
	if fn.st != nil {
		fn.st.Close()
	}
}

func (fn *readRawFn) CreateInitialRestriction(p ReadPlan) ShardSet {
	return ShardSet(p)
}

// SplitRestriction starts with one restriction per shard, so a runner reads
// them in parallel from the start.
func (fn *readRawFn) SplitRestriction(_ ReadPlan, r ShardSet) []ShardSet {
	out := make([]ShardSet, len(r.Shards))
	for i := range r.Shards {
		out[i] = ShardSet{Shards: r.Shards[i : i+1]}
	}
	return out
}

func (fn *readRawFn) RestrictionSize(_ ReadPlan, r ShardSet) float64 { return float64(len(r.Shards)) }

func (fn *readRawFn) CreateTracker(r ShardSet) *sdf.LockRTracker {
	return sdf.NewLockRTracker(newShardTracker(r))
}

func (fn *readRawFn) ProcessElement(ctx context.Context, rt *sdf.LockRTracker, _ ReadPlan, emit func(click.Batch)) error {
	r := rt.GetRestriction().(ShardSet)
	for i := 0; i < len(r.Shards); i++ {
		if !rt.TryClaim(i) {
			return rt.GetError()
		}
		batch := make([]click.Click, 0, fn.Batch)
		err := fn.st.ReadRaw(ctx, r.Shards[i].shard(), func(c click.Click) error {
			batch = append(batch, c)
			if len(batch) == fn.Batch {
				emit(click.Batch{Clicks: batch})
				fn.read.Inc(ctx, int64(len(batch)))
				batch = make([]click.Click, 0, fn.Batch)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("storeio: read raw shard %d: %w", i, err)
		}
		if len(batch) > 0 {
			emit(click.Batch{Clicks: batch})
			fn.read.Inc(ctx, int64(len(batch)))
		}
	}
	return nil
}
