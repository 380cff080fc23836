package logwatch

import (
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adclick/adclick/domain/click"
)

// Record is the raw topic's record of one log line, as the watcher publishes
// it and the streaming job's reader expects it. A click (c != nil) is keyed
// by key (its ad_id, salted for hot ads) with its event time as timestamp,
// unless that is further ahead of now than Kafka accepts: then the event time
// stays in the value only. A line that is not a click (c == nil) has no key,
// now as timestamp and the click.NoEventTimeHeader header, so the reader
// gives it no event time. value is kept, not copied.
func Record(value []byte, c *click.Click, key []byte, now time.Time) *kgo.Record {
	r := &kgo.Record{Value: value}
	if c == nil {
		r.Timestamp = now
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: click.NoEventTimeHeader, Value: []byte("1")})
		return r
	}
	r.Key = key
	r.Timestamp = time.UnixMilli(c.Time)
	if r.Timestamp.Sub(now) > maxFutureSkew {
		// Kafka refuses timestamps too far ahead (after.max.ms, 1 h by
		// default) and fails the whole batch.
		r.Timestamp = now
	}
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
