package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// brokerTrim bounds the all-in-one's embedded broker, which keeps every
// record: without it the process grew by the raw and results topics' size,
// ~20 MB a minute at 1,000 clicks/s, when the log was in memory (it is in
// files now, newEmbeddedBroker; the per-batch index stays in memory). A record is deleted once
// the consumers that need it have committed past it and, for the raw topic,
// once it was published more than keep ago (wall clock, from the end offsets
// seen at earlier passes; not record timestamps, which are event times):
// the streaming job reads within seconds, and a restarted all-in-one
// publishes its log again into an empty broker, so the stream's own restart
// point (up to the longest window back) is never used here. Dead letters,
// which nothing consumes, keep their newest deadKeep records per partition
// but none published more than keep ago: a count cap alone let the broker's
// per-batch index grow for an hour at the generator's malformed share.
type brokerTrim struct {
	adm      *kadm.Client
	groups   map[string][]string // topic → consumer groups that must have passed a record
	byTime   map[string]bool     // topics also trimmed by record time
	keep     time.Duration
	deadKeep int64
	log      *slog.Logger

	seen    []endsAt                   // end offsets of the byTime topics at earlier passes, oldest first
	deleted map[string]map[int32]int64 // what was deleted up to: a deletion must move forward
}

type endsAt struct {
	at   time.Time
	ends map[string]map[int32]int64
}

// publishedBefore returns the newest end offsets seen at least keep ago.
func (b *brokerTrim) publishedBefore(now time.Time) map[string]map[int32]int64 {
	var out map[string]map[int32]int64
	for len(b.seen) > 0 && now.Sub(b.seen[0].at) >= b.keep {
		out = b.seen[0].ends
		b.seen = b.seen[1:]
	}
	if out != nil {
		// Keep it as the oldest entry: the next pass may use it again.
		b.seen = append([]endsAt{{at: now.Add(-b.keep), ends: out}}, b.seen...)
	}
	return out
}

func (b *brokerTrim) run(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := b.once(ctx); err != nil && ctx.Err() == nil {
			b.log.Warn("all-in-one: trimming the embedded broker", "err", err)
		}
	}
}

// applyAge bounds target by what was published keep ago (old): a topic
// nobody consumes (dead letters) keeps at most deadKeep records and none
// older than keep; a byTime topic keeps what its groups passed until it is
// older than keep.
func (b *brokerTrim) applyAge(topic string, unconsumed bool, target, old map[int32]int64) {
	switch {
	case unconsumed:
		for p := range target {
			if e, ok := old[p]; ok {
				target[p] = max(target[p], e)
			}
		}
	case b.byTime[topic]:
		for p := range target {
			if e, ok := old[p]; ok {
				target[p] = min(target[p], e)
			} else {
				delete(target, p)
			}
		}
	}
}

// once deletes, per topic and partition, the records every consumer has
// passed (and, with byTime, that are older than keep).
func (b *brokerTrim) once(ctx context.Context) error {
	now := time.Now()
	old := b.publishedBefore(now)
	snap := endsAt{at: now, ends: map[string]map[int32]int64{}}
	defer func() { b.seen = append(b.seen, snap) }()
	for topic, groups := range b.groups {
		ends, err := b.adm.ListEndOffsets(ctx, topic)
		if err != nil {
			return fmt.Errorf("listing the end offsets of %s: %w", topic, err)
		}
		target := map[int32]int64{}
		ends.Each(func(o kadm.ListedOffset) {
			if o.Err == nil {
				target[o.Partition] = o.Offset
			}
		})
		if len(groups) == 0 {
			for p, e := range target {
				target[p] = max(0, e-b.deadKeep)
			}
		}
		for _, g := range groups {
			committed, err := b.adm.FetchOffsetsForTopics(ctx, g, topic)
			if err != nil {
				return fmt.Errorf("fetching the offsets of group %s: %w", g, err)
			}
			for p := range target {
				o, ok := committed.Lookup(topic, p)
				if !ok || o.At < 0 {
					delete(target, p) // nothing committed: keep everything
					continue
				}
				target[p] = min(target[p], o.At)
			}
		}
		if len(groups) == 0 || b.byTime[topic] {
			snap.ends[topic] = map[int32]int64{}
			ends.Each(func(o kadm.ListedOffset) {
				if o.Err == nil {
					snap.ends[topic][o.Partition] = o.Offset
				}
			})
		}
		b.applyAge(topic, len(groups) == 0, target, old[topic])
		if b.deleted == nil {
			b.deleted = map[string]map[int32]int64{}
		}
		if b.deleted[topic] == nil {
			b.deleted[topic] = map[int32]int64{}
		}
		var os kadm.Offsets
		for p, at := range target {
			if at > b.deleted[topic][p] {
				os.Add(kadm.Offset{Topic: topic, Partition: p, At: at, LeaderEpoch: -1})
			}
		}
		if len(os) == 0 {
			continue
		}
		rs, err := b.adm.DeleteRecords(ctx, os)
		if err == nil {
			err = rs.Error()
		}
		if err != nil {
			return fmt.Errorf("deleting old records of %s: %w", topic, err)
		}
		for _, o := range os[topic] {
			b.deleted[topic][o.Partition] = o.At
		}
	}
	return nil
}
