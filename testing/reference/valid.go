package reference

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Click is what the oracle keeps of a valid event.
type Click struct {
	EventID, AdID, Country, Device, Format string
	Minute                                 int64 // Unix seconds
}

// Valid reports whether line is a valid docs/spec.md §1 event, and the event
// (the zero Click when it is not).
func Valid(line []byte) (Click, bool) {
	if !wellFormed(line) {
		return Click{}, false
	}
	fields, ok := topLevel(line)
	if !ok {
		return Click{}, false
	}
	c, ok := stringFields(fields)
	if !ok {
		return Click{}, false
	}
	ms, ok := timestamp(fields)
	if !ok {
		return Click{}, false
	}
	sec := ms / 1000
	if ms < 0 && ms%1000 != 0 {
		sec--
	}
	c.Minute = sec - ((sec%60)+60)%60
	return c, true
}

// wellFormed applies the limits a JSON decoder does not: size, UTF-8,
// nesting and unpaired surrogate escapes.
func wellFormed(line []byte) bool {
	if len(line) > 64*1024 || !utf8.Valid(line) {
		return false
	}
	if depth(line) > 64 { // adclick's documented nesting limit
		return false
	}
	return !loneSurrogate(line)
}

// topLevel decodes line as one JSON object with nothing after it, and
// returns its members' raw values. A known key may appear only once.
func topLevel(line []byte) (map[string]json.RawMessage, bool) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, false
	}
	fields := map[string]json.RawMessage{}
	known := map[string]bool{"event_id": true, "ad_id": true, "timestamp": true, "user_id": true, "ip": true, "country": true, "device": true, "ad_format": true}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, false
		}
		k := kt.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, false
		}
		if _, dup := fields[k]; dup && known[k] {
			return nil, false
		}
		fields[k] = raw
	}
	if end, err := dec.Token(); err != nil || end != json.Delim('}') {
		return nil, false
	}
	// Only whitespace may follow the object: a second value or a syntax
	// error (say a stray letter) both make the line invalid.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, false
	}
	return fields, true
}

// stringFields checks every string field and returns the ones the
// aggregation reads.
func stringFields(fields map[string]json.RawMessage) (Click, bool) {
	str := func(k string, required bool) (string, bool) {
		raw, ok := fields[k]
		if !ok {
			return "", !required
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false
		}
		if len(s) > 256 || (required && s == "") {
			return "", false
		}
		return s, true
	}
	var c Click
	var ok bool
	if c.EventID, ok = str("event_id", true); !ok {
		return Click{}, false
	}
	if c.AdID, ok = str("ad_id", true); !ok {
		return Click{}, false
	}
	for _, k := range []string{"user_id", "ip"} {
		if _, ok = str(k, false); !ok {
			return Click{}, false
		}
	}
	if c.Country, ok = str("country", false); !ok {
		return Click{}, false
	}
	if c.Device, ok = str("device", false); !ok {
		return Click{}, false
	}
	if c.Format, ok = str("ad_format", false); !ok {
		return Click{}, false
	}
	return c, true
}

// timestamp returns the event time in epoch milliseconds: an RFC 3339
// string or an integer, within years 2000-2100.
func timestamp(fields map[string]json.RawMessage) (int64, bool) {
	raw, present := fields["timestamp"]
	if !present {
		return 0, false
	}
	var ms int64
	var num json.Number
	var s string
	switch {
	case json.Unmarshal(raw, &s) == nil:
		if len(s) > 256 {
			return 0, false
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return 0, false
		}
		ms = t.UnixMilli()
	case json.Unmarshal(raw, &num) == nil:
		n, err := strconv.ParseInt(num.String(), 10, 64)
		if err != nil {
			return 0, false
		}
		ms = n
	default:
		return 0, false
	}
	lo := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	hi := time.Date(2101, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	return ms, ms >= lo && ms < hi
}

// loneSurrogate: encoding/json turns an unpaired surrogate escape into U+FFFD;
// Event text is UTF-8 (docs/spec.md §1), so a line with one is invalid.
func loneSurrogate(line []byte) bool {
	if strings.ContainsRune(string(line), utf8.RuneError) || strings.Contains(strings.ToLower(string(line)), `\ufffd`) {
		return false // a real U+FFFD somewhere: can't tell, assume none
	}
	var v any
	if json.Unmarshal(line, &v) != nil {
		return false
	}
	var walk func(any) bool
	walk = func(v any) bool {
		switch x := v.(type) {
		case string:
			return strings.ContainsRune(x, utf8.RuneError)
		case []any:
			for _, e := range x {
				if walk(e) {
					return true
				}
			}
		case map[string]any:
			for k, e := range x {
				if strings.ContainsRune(k, utf8.RuneError) || walk(e) {
					return true
				}
			}
		}
		return false
	}
	return walk(v)
}

// depth is the deepest nesting of arrays and objects, via encoding/json's
// tokenizer (independent of the production scanner).
func depth(line []byte) int {
	dec := json.NewDecoder(bytes.NewReader(line))
	d, deepest := 0, 0
	for {
		t, err := dec.Token()
		if err != nil {
			return deepest
		}
		switch t {
		case json.Delim('['), json.Delim('{'):
			d++
			deepest = max(deepest, d)
		case json.Delim(']'), json.Delim('}'):
			d--
		}
	}
}
