package transforms

import (
	"math"

	"github.com/adclick/adclick/transforms/click"
)

// NoWatermark marks a batch read by a bounded source: nothing is late (SPEC §2,
// batch).
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

// Clicks is a batch of already-validated clicks, as read back from the raw
// store for a replay. Replays are bounded: nothing is late.
type Clicks struct {
	Clicks []click.Click
}

// DeadLetter is a rejected line with its machine-readable reason (SPEC §1).
type DeadLetter struct {
	Line   string `json:"line"` // truncated to DeadLetterMaxLine bytes
	Reason string `json:"reason"`
	Field  string `json:"field,omitempty"`
	Detail string `json:"detail"`
}

// DeadLetterMaxLine bounds the copy of a rejected line kept in its dead letter.
const DeadLetterMaxLine = 1024
