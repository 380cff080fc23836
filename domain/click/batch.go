package click

import "math"

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

// NoEventTimeHeader is the raw topic's record header that marks a record whose
// Kafka timestamp is not its event time: a line the producer could not parse,
// stamped with the wall clock. Readers keep such records out of the watermark:
// while a backlog is read, one malformed line stamped "now" would otherwise
// close every window of the backlog and make all its later clicks too late.
const NoEventTimeHeader = "adclick-no-event-time"
