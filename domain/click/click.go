// Package click is a leaf domain package: the click event of docs/spec.md §1
// and its strict validation, in plain Go without Beam.
//
// Having no Beam dependency lets the Beam transforms, the log watcher, the
// stores and the plain-loop benchmark baseline all share exactly one
// definition of what a valid click is. The parser is parse.go (prechecks and
// field validation), scan.go (the single-pass JSON scanner) and timestamp.go.
package click

import (
	"bytes"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Limits from docs/spec.md §1.
const (
	MaxLineBytes  = 64 << 10 // a longer line is rejected
	MaxFieldBytes = 256      // every string field
)

// MaxNesting bounds how deeply arrays and objects may nest in a line (in
// unknown fields). It is checked first, in one pass, because the JSON
// validator's cost grows steeply with depth.
const MaxNesting = 64

// Event time must lie in [MinTime, MaxTime) (years 2000 through 2100, UTC).
var (
	MinTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	MaxTime = time.Date(2101, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Click is one valid click event. Time is event time in Unix milliseconds, UTC.
// Empty optional attributes mean "no value" (docs/spec.md §2 filters).
type Click struct {
	EventID  string
	AdID     string
	Time     int64
	UserID   string
	IP       string
	Country  string
	Device   string
	AdFormat string
}

// Minute is the start of the click's 1-minute event-time window, in Unix seconds.
func (c *Click) Minute() int64 { return MinuteOf(c.Time) }

// MinuteOf returns the window start, in Unix seconds, of an event time in Unix ms.
func MinuteOf(ms int64) int64 {
	s := ms / 1000
	if ms%1000 < 0 {
		s--
	}
	m := s - s%60
	if s%60 < 0 {
		m -= 60
	}
	return m
}

// Reason is a machine-readable reject reason. The set is closed: metrics and the
// dead-letter output are labelled with these values only.
type Reason string

// Reject reasons (docs/spec.md §1).
const (
	ReasonTooLong        Reason = "line_too_long"
	ReasonInvalidUTF8    Reason = "invalid_utf8"
	ReasonInvalidJSON    Reason = "invalid_json"
	ReasonNotObject      Reason = "not_object"
	ReasonDuplicateField Reason = "duplicate_field"
	ReasonMissingField   Reason = "missing_field"
	ReasonWrongType      Reason = "wrong_type"
	ReasonEmptyField     Reason = "empty_field"
	ReasonFieldTooLong   Reason = "field_too_long"
	ReasonBadTimestamp   Reason = "bad_timestamp"
	ReasonTimeOutOfRange Reason = "timestamp_out_of_range"
)

// Reasons lists every reject reason, for metrics and reports.
var Reasons = []Reason{
	ReasonTooLong, ReasonInvalidUTF8, ReasonInvalidJSON, ReasonNotObject,
	ReasonDuplicateField, ReasonMissingField, ReasonWrongType, ReasonEmptyField,
	ReasonFieldTooLong, ReasonBadTimestamp, ReasonTimeOutOfRange,
}

// RejectError says why a line is not a valid click.
type RejectError struct {
	Reason Reason
	Field  string // the offending field, if any
	Detail string
}

func (e *RejectError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: field %q: %s", e.Reason, e.Field, e.Detail)
	}
	return fmt.Sprintf("%s: %s", e.Reason, e.Detail)
}

// AsReject returns the RejectError inside err, if any.
func AsReject(err error) (*RejectError, bool) {
	var r *RejectError
	ok := errors.As(err, &r)
	return r, ok
}

func reject(r Reason, field, format string, args ...any) *RejectError {
	return &RejectError{Reason: r, Field: field, Detail: fmt.Sprintf(format, args...)}
}

// field indexes of the known keys; the bit set detects duplicate keys.
const (
	fEventID = iota
	fAdID
	fTimestamp
	fUserID
	fIP
	fCountry
	fDevice
	fAdFormat
)

var fieldNames = [...]string{"event_id", "ad_id", "timestamp", "user_id", "ip", "country", "device", "ad_format"}

func fieldIndex(key []byte) int {
	switch string(key) { // no allocation: the compiler special-cases this conversion
	case "event_id":
		return fEventID
	case "ad_id":
		return fAdID
	case "timestamp":
		return fTimestamp
	case "user_id":
		return fUserID
	case "ip":
		return fIP
	case "country":
		return fCountry
	case "device":
		return fDevice
	case "ad_format":
		return fAdFormat
	}
	return -1
}

// hasLoneSurrogate reports a \uD800-\uDFFF escape that is not a valid
// high-low pair. The JSON parser would keep such an escape as literal text,
// and the value it stands for is not UTF-8.
func hasLoneSurrogate(line []byte) bool {
	if !bytes.Contains(line, []byte(`\u`)) {
		return false
	}
	for i := 0; i < len(line); i++ {
		if line[i] != '\\' {
			continue
		}
		if i+1 < len(line) && line[i+1] != 'u' {
			i++ // an escaped character, possibly a backslash: skip it
			continue
		}
		r, ok := hex4(line, i+2)
		if !ok {
			continue // malformed escape: the parser rejects it
		}
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return true // low surrogate first
		case r >= 0xD800 && r <= 0xDBFF:
			if i+11 < len(line) && line[i+6] == '\\' && line[i+7] == 'u' {
				if lo, ok := hex4(line, i+8); ok && lo >= 0xDC00 && lo <= 0xDFFF {
					i += 11
					continue
				}
			}
			return true
		}
		i += 5
	}
	return false
}

// nestingDepth returns the deepest bracket nesting outside strings, stopping
// early once it passes MaxNesting.
func nestingDepth(line []byte) int {
	depth, deepest := 0, 0
	inString := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			depth++
			if depth > deepest {
				deepest = depth
				if deepest > MaxNesting {
					return deepest
				}
			}
		case ']', '}':
			depth--
		}
	}
	return deepest
}

func hex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[at : at+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

func isInteger(b []byte) bool {
	if len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// cut on a rune boundary so the detail stays valid UTF-8
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// Truncate shortens a raw line for a dead-letter record: at most n bytes, cut
// on a UTF-8 boundary when the line is valid UTF-8.
func Truncate(line []byte, n int) string { return truncate(string(line), n) }
