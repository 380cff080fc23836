package click

import (
	"strconv"
	"time"
)

var (
	minMS = MinTime.UnixMilli()
	maxMS = MaxTime.UnixMilli()
)

func parseTimestamp(ps *Parser, line []byte, v span) (int64, *RejectError) {
	const name = "timestamp"
	var ms int64
	switch v.kind {
	case kNone:
		return 0, reject(ReasonMissingField, name, "required field is missing")
	case kString:
		b := ps.stringValue(line, v)
		if len(b) == 0 {
			return 0, reject(ReasonEmptyField, name, "required field is empty")
		}
		if len(b) > MaxFieldBytes {
			return 0, reject(ReasonFieldTooLong, name, "%d bytes, limit %d", len(b), MaxFieldBytes)
		}
		t, err := parseRFC3339(b)
		if err != nil {
			return 0, reject(ReasonBadTimestamp, name, "not RFC 3339: %q", truncate(string(b), 64))
		}
		if t.Before(MinTime) || !t.Before(MaxTime) {
			return 0, reject(ReasonTimeOutOfRange, name, "%s is outside years 2000-2100", t.UTC().Format(time.RFC3339))
		}
		ms = t.UnixMilli()
	case kNumber:
		raw := line[v.start:v.end]
		if !isInteger(raw) {
			return 0, reject(ReasonBadTimestamp, name, "epoch milliseconds must be an integer, got %s", truncate(string(raw), 64))
		}
		n, err := parseInt(raw)
		if err != nil {
			return 0, reject(ReasonTimeOutOfRange, name, "%s is outside years 2000-2100", truncate(string(raw), 64))
		}
		ms = n
		if ms < minMS || ms >= maxMS {
			return 0, reject(ReasonTimeOutOfRange, name, "%d ms is outside years 2000-2100", ms)
		}
	default:
		return 0, reject(ReasonWrongType, name, "want an RFC 3339 string or integer epoch milliseconds, got %s", v.kind)
	}
	return ms, nil
}

// parseInt is strconv.ParseInt without the string conversion: short
// integers, the common case, are parsed in place.
func parseInt(b []byte) (int64, error) {
	if len(b) > 0 && len(b) <= 18 { // no overflow possible
		neg := b[0] == '-'
		d := b
		if neg {
			d = b[1:]
		}
		var n int64
		for _, c := range d {
			n = n*10 + int64(c-'0')
		}
		if neg {
			n = -n
		}
		return n, nil
	}
	return strconv.ParseInt(string(b), 10, 64)
}

// parseRFC3339 parses the common form yyyy-mm-ddThh:mm:ss.sssZ directly and
// everything else with time.Parse, which allocates.
func parseRFC3339(b []byte) (time.Time, error) {
	if t, ok := parseUTCMillis(b); ok {
		return t, nil
	}
	return time.Parse(time.RFC3339Nano, string(b))
}

// parseUTCMillis handles exactly "yyyy-mm-ddThh:mm:ss.sssZ" with fields in
// range; anything else (and any doubt) is left to time.Parse.
func parseUTCMillis(b []byte) (time.Time, bool) {
	if len(b) != 24 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' || b[19] != '.' || b[23] != 'Z' {
		return time.Time{}, false
	}
	num := func(from, to int) (int, bool) {
		n := 0
		for _, c := range b[from:to] {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	y, ok1 := num(0, 4)
	mo, ok2 := num(5, 7)
	d, ok3 := num(8, 10)
	h, ok4 := num(11, 13)
	mi, ok5 := num(14, 16)
	s, ok6 := num(17, 19)
	ms, ok7 := num(20, 23)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, s, ms*1e6, time.UTC)
	if t.Day() != d { // day past the month's end: time.Parse gives the error
		return time.Time{}, false
	}
	return t, true
}
