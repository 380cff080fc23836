package logwatch

import (
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adclick/adclick/domain/click"
)

// Record is the raw topic's record of one log line, as the watcher publishes
// it and the streaming job's reader expects it. A click (c != nil) is keyed
// by key (its ad_id, salted for hot ads) and carries its event time in the
// click.EventTimeHeader header; a line that is not a click (c == nil) has no
// key and the click.NoEventTimeHeader header, so the reader gives it no
// event time. value is kept, not copied.
//
// The timestamp is now, the publishing time, never the event time: the raw
// topic's time retention counts from it, and a backfilled click stamped with
// an event time older than retention.ms could be deleted before it is read.
// The raw topic has message.timestamp.type=LogAppendTime, so the broker
// stamps its own clock anyway; now is what a CreateTime topic (one created
// before, or the all-in-one's embedded broker, which keeps the producer's
// timestamp) keeps, with the same effect.
func Record(value []byte, c *click.Click, key []byte, now time.Time) *kgo.Record {
	r := &kgo.Record{Value: value, Timestamp: now}
	if c == nil {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: click.NoEventTimeHeader, Value: []byte("1")})
		return r
	}
	r.Key = key
	r.Headers = append(r.Headers, kgo.RecordHeader{Key: click.EventTimeHeader, Value: click.AppendEventTime(nil, c.Time)})
	return r
}

// LineRecord parses line and returns its record keyed by the plain ad_id
// (no hot-ad salting): what tests and benchmarks publish in the watcher's
// stead. ok is false for a line that is not a click.
func LineRecord(p *click.Parser, line []byte, now time.Time) (r *kgo.Record, ok bool) {
	c, err := p.Parse(line)
	if err != nil {
		return Record(line, nil, nil, now), false
	}
	return Record(line, &c, []byte(c.AdID), now), true
}
