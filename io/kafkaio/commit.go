package kafkaio

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

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
