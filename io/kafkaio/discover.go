package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/adclick/adclick/io/kafkasec"
)

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
	cl, err := newClient(c.Brokers, c.DialTimeout, c.Security)
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
			return specs, explain(err, c.Security)
		}
		slog.Default().Debug("kafkaio: retrying partition discovery", "topic", c.Topic, "err", err)
		select {
		case <-ctx.Done():
			return nil, explain(err, c.Security)
		case <-time.After(wait):
		}
	}
}

// explain adds the likely cause of a failed connection (kafkasec.Cause): the
// first request of a pipeline is where a worker without the launcher's
// credentials or CA finds out.
func explain(err error, sec kafkasec.Security) error {
	if err == nil {
		return nil
	}
	if c := kafkasec.Cause(err, sec); c != "" {
		return fmt.Errorf("%w (%s)", err, c)
	}
	return err
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
