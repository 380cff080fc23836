package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/adclick/adclick/io/kafkasec"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func init() {
	register.DoFn3x1[context.Context, []byte, []byte, error](&writeFn{})
}

// Write produces every element of col (PCollection<[]byte>) to the topic,
// keyed by keyFn, a registered func([]byte) ([]byte, []byte) returning the key
// and the value (the raw topic is keyed by ad_id, the result topic by the
// result's key). It returns nothing useful downstream; the bundle that carried
// an element completes only once the broker acknowledged it.
func Write(s beam.Scope, cfg WriteConfig, keyFn any, col beam.PCollection) {
	s = s.Scope("kafkaio.Write")
	WriteKV(s, cfg, beam.ParDo(s, keyFn, col))
}

// WriteKV produces a PCollection<KV<[]byte, []byte>> of keys and values. It
// panics on an invalid configuration, like Beam's constructors.
func WriteKV(s beam.Scope, cfg WriteConfig, kvs beam.PCollection) {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	s = s.Scope("kafkaio.WriteKV")
	beam.ParDo0(s, &writeFn{Cfg: cfg.withDefaults()}, kvs)
}

// writeFn produces asynchronously in ProcessElement and flushes in
// FinishBundle: per-record acknowledgement waits would cap throughput at one
// round trip per record, and flushing before the bundle ends keeps the
// guarantee that a committed bundle's records are in Kafka. A retried bundle
// may produce a record twice; consumers dedup (raw clicks by event_id) or
// overwrite by key (results).
type writeFn struct {
	Cfg WriteConfig
	p   *Producer
}

func (f *writeFn) Setup() error {
	p, err := NewProducer(f.Cfg, slog.Default().With("component", "kafkaio.Write", "topic", f.Cfg.Topic))
	if err != nil {
		return err
	}
	f.p = p
	return nil
}

func (f *writeFn) ProcessElement(ctx context.Context, k, v []byte) error {
	return f.p.Produce(ctx, k, v)
}

func (f *writeFn) FinishBundle(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, f.Cfg.FlushTimeout)
	defer cancel()
	return f.p.Flush(ctx)
}

func (f *writeFn) Teardown() {
	if f.p != nil {
		f.p.Close()
	}
}

// Producer is an idempotent, batching Kafka producer for one topic: Produce
// queues, Flush waits until everything queued is acknowledged and reports the
// first failure since the previous Flush.
type Producer struct {
	cl    *kgo.Client
	topic string
	log   *slog.Logger

	mu  sync.Mutex
	err error
}

// NewProducer connects lazily: the first Produce or Flush meets a down broker.
func NewProducer(cfg WriteConfig, log *slog.Logger) (*Producer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := cfg.withDefaults()
	// franz-go retries a record without limit by default (until Flush's
	// context ends), except on a missing topic (UnknownTopicRetries).
	cl, err := newClient(c.Brokers, c.DialTimeout, c.Security,
		kgo.DefaultProduceTopic(c.Topic),
		kgo.ProducerLinger(c.Linger),
		kgo.MaxBufferedRecords(c.MaxBufferedRec),
	)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Producer{cl: cl, topic: c.Topic, log: log}, nil
}

// Produce queues one record. It blocks while MaxBufferedRec records are
// waiting (back-pressure) and returns an error only if ctx ends meanwhile or
// an earlier record already failed.
func (p *Producer) Produce(ctx context.Context, key, value []byte) error {
	if err := p.failed(); err != nil {
		return err
	}
	p.cl.Produce(ctx, &kgo.Record{Key: key, Value: value}, p.promise)
	return nil
}

func (p *Producer) promise(r *kgo.Record, err error) {
	if err == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.err = fmt.Errorf("kafkaio: producing to %s: %w", p.topic, err)
		if errors.Is(err, context.Canceled) {
			// A shutdown: the bundle fails and its records are produced again
			// after the restart; not worth an error line on every Ctrl-C.
			p.log.Info("kafkaio: produce cancelled", "err", err)
		} else {
			p.log.Error("kafkaio: produce failed", "err", err)
		}
	}
}

func (p *Producer) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Flush waits until every queued record is acknowledged, and returns (and
// clears) the first error since the last Flush.
func (p *Producer) Flush(ctx context.Context) error {
	ferr := p.cl.Flush(ctx)
	p.mu.Lock()
	err := p.err
	p.err = nil
	p.mu.Unlock()
	if ferr != nil {
		return errors.Join(fmt.Errorf("kafkaio: flushing to %s: %w", p.topic, ferr), err)
	}
	return err
}

// Close closes the client; unflushed records are failed.
func (p *Producer) Close() { p.cl.Close() }

// EnsureTopic creates the topic with the given number of partitions
// (replication factor 1 when the cluster has one broker, else the broker
// default) unless it exists, and waits until it is usable. Tests and the all-in-one use it: production
// topics are created by their operators (adclick topics), so it connects in
// plaintext.
func EnsureTopic(ctx context.Context, brokers []string, topic string, partitions int32) error {
	cl, err := newClient(brokers, 10*time.Second, kafkasec.Security{})
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	bs, err := adm.ListBrokers(ctx)
	if err != nil {
		return fmt.Errorf("kafkaio: listing brokers: %w", err)
	}
	rf := int16(-1)
	if len(bs) == 1 {
		rf = 1
	}
	r, err := adm.CreateTopic(ctx, partitions, rf, nil, topic)
	if err == nil {
		err = r.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("kafkaio: creating topic %q: %w", topic, err)
	}
	return waitLeaders(ctx, adm, topic, partitions)
}

// waitLeaders waits until every partition of topic has a leader: a client
// that sees the topic before that waits for its next metadata refresh
// (seconds) to use it.
func waitLeaders(ctx context.Context, adm *kadm.Client, topic string, partitions int32) error {
	for {
		md, err := adm.Metadata(ctx, topic)
		if err == nil {
			if td, ok := md.Topics[topic]; ok && td.Err == nil && len(td.Partitions) == int(partitions) {
				ready := true
				for _, pd := range td.Partitions {
					ready = ready && pd.Err == nil && pd.Leader >= 0
				}
				if ready {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafkaio: topic %q has no leader for every partition: %w", topic, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
