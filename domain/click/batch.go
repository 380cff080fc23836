package click

import (
	"math"
	"strconv"
)

// NoWatermark marks a batch read by a bounded source: nothing is late
// (docs/spec.md §2, batch).
const NoWatermark int64 = math.MinInt64

// Lines is a batch of raw click lines (JSON, no newline) read together from one
// source split. Sources emit batches, not single lines, because every element
// that crosses a DoFn boundary costs far more than parsing a line does.
//
// Watermark is the reading source's event-time watermark (Unix ms) when the
// batch was read: a click whose window closed more than the allowed lateness
// before it is too late. A streaming source sets it from the same estimator it
// reports to the runner; a bounded source sets NoWatermark.
type Lines struct {
	Lines     [][]byte
	Watermark int64
}

// Batch is a batch of already-validated clicks, as read back from the raw
// store for a replay. Replays are bounded: nothing is late.
type Batch struct {
	Clicks []Click
}

// NoEventTimeHeader is the raw topic's record header that marks a record
// without an event time: a line the producer could not parse. Readers keep
// such records out of the watermark: while a backlog is read, one malformed
// line counted at its publishing time would otherwise close every window of
// the backlog and make all its later clicks too late.
const NoEventTimeHeader = "adclick-no-event-time"

// EventTimeHeader is the raw topic's record header that carries a click's
// event time: Unix milliseconds, in decimal (AppendEventTime). The record's
// Kafka timestamp is not the event time: it is when the record was published
// (the raw topic has message.timestamp.type=LogAppendTime, the broker's
// clock), so that time-based retention counts from publishing. With event
// times as timestamps, a backfilled log older than retention.ms was deleted
// at the broker's next retention check, before anyone read it. Records
// without the header (published before it existed, with CreateTime) carry
// the event time as their timestamp.
const EventTimeHeader = "adclick-event-time"

// AppendEventTime appends the EventTimeHeader value of event time ms.
func AppendEventTime(b []byte, ms int64) []byte { return strconv.AppendInt(b, ms, 10) }

// ParseEventTime reads an EventTimeHeader value; ok is false when it is not
// one (then the record has no usable event time).
func ParseEventTime(v []byte) (ms int64, ok bool) {
	if len(v) == 0 || len(v) > 20 {
		return 0, false
	}
	ms, err := strconv.ParseInt(string(v), 10, 64)
	return ms, err == nil
}
