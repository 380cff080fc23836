package queryapi

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/adclick/adclick/domain/result"
)

// Limits of the query parameters (docs/spec.md §1 bounds ids and attributes to 256 bytes).
const (
	maxIDBytes = 256
	// maxUnix is 9999-12-31T23:59:00Z: every accepted time renders as RFC 3339.
	maxUnix = 253402300740
)

// paramError is a 400 answer: the detail is safe to show to the client.
type paramError struct{ detail string }

func (e *paramError) Error() string { return e.detail }

func badParam(format string, args ...any) error {
	return &paramError{detail: fmt.Sprintf(format, args...)}
}

// quote renders a client-supplied value for an error detail: bounded and
// quoted so a hostile value cannot shape the message.
func quote(v string) string {
	if len(v) > 64 {
		v = v[:64] + "…"
	}
	return strconv.Quote(strings.ToValidUTF8(v, "\uFFFD"))
}

const timeForms = "RFC 3339 (2024-01-01T10:00:00Z), YYYY-MM-DDTHH:MM in UTC (2024-01-01T10:00) or epoch seconds (1704103200)"

// parseMinute parses a docs/spec.md §3 time and requires a whole UTC minute. It
// returns Unix seconds.
func parseMinute(name, v string) (int64, error) {
	if v == "" {
		return 0, badParam("%s is required: %s", name, timeForms)
	}
	var t time.Time
	var err error
	switch {
	case isDigits(v):
		if len(v) > 12 {
			return 0, badParam("%s: %s is out of range", name, quote(v))
		}
		n, _ := strconv.ParseInt(v, 10, 64) // ≤ 12 digits always fits
		t = time.Unix(n, 0)
	case len(v) == len("2006-01-02T15:04"):
		t, err = time.Parse("2006-01-02T15:04", v)
	default:
		t, err = time.Parse(time.RFC3339Nano, v)
		if err != nil && strings.Contains(v, " ") {
			// A '+' of an offset arrives as a space when the client did
			// not escape it in the query string.
			t, err = time.Parse(time.RFC3339Nano, strings.Replace(v, " ", "+", 1))
		}
	}
	if err != nil {
		return 0, badParam("%s: %s is not a time: use %s", name, quote(v), timeForms)
	}
	u := t.Unix()
	if u < 0 || u > maxUnix {
		return 0, badParam("%s: %s is out of range (1970-01-01 to 9999-12-31)", name, quote(v))
	}
	if u%60 != 0 || t.Nanosecond() != 0 {
		return 0, badParam("%s: %s is not a whole minute", name, quote(v))
	}
	return u, nil
}

func isDigits(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return true
}

// parseSmallInt parses a positive decimal integer of at most 6 digits.
func parseSmallInt(name, v string) (int, error) {
	if !isDigits(v) || len(v) > 6 {
		return 0, badParam("%s: %s is not a positive integer", name, quote(v))
	}
	n, _ := strconv.Atoi(v)
	return n, nil
}

// parseBool accepts "true" and "false" (absent: false).
func parseBool(name, v string) (bool, error) {
	switch v {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, badParam("%s: %s must be true or false", name, quote(v))
}

// parseFilterID checks "dimension:value" against the docs/spec.md §2 dimensions.
func parseFilterID(v string) (string, error) {
	dim, val, ok := strings.Cut(v, ":")
	if !ok {
		return "", badParam("filter_id: %s must be dimension:value with dimension one of %s", quote(v), strings.Join(result.Dimensions, ", "))
	}
	known := false
	for _, d := range result.Dimensions {
		if d == dim {
			known = true
		}
	}
	if !known {
		return "", badParam("filter_id: unknown dimension %s: use one of %s", quote(dim), strings.Join(result.Dimensions, ", "))
	}
	if val == "" {
		return "", badParam("filter_id: %s has an empty value", quote(v))
	}
	if len(val) > maxIDBytes || !utf8.ValidString(val) {
		return "", badParam("filter_id: the value must be valid UTF-8 of at most %d bytes", maxIDBytes)
	}
	return v, nil
}

// checkID enforces docs/spec.md §1's id rule (1-256 bytes of UTF-8) on a path
// parameter.
func checkID(name, v string) error {
	if v == "" {
		return badParam("%s is empty", name)
	}
	if len(v) > maxIDBytes {
		return badParam("%s is %d bytes, at most %d allowed", name, len(v), maxIDBytes)
	}
	if !utf8.ValidString(v) {
		return badParam("%s is not valid UTF-8", name)
	}
	return nil
}

// queryParams parses the raw query and refuses parameters the route does not
// declare and repeated ones: a typo like "filter=" must not silently widen
// the answer.
func queryParams(raw string, allowed []param) (map[string]string, error) {
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return nil, badParam("the query string is malformed")
	}
	out := make(map[string]string, len(vals))
	for k, vs := range vals {
		ok := false
		for _, p := range allowed {
			if p.name == k {
				ok = true
				break
			}
		}
		if !ok {
			names := make([]string, len(allowed))
			for i, p := range allowed {
				names[i] = p.name
			}
			if len(names) == 0 {
				return nil, badParam("unknown query parameter %s: this route takes none", quote(k))
			}
			return nil, badParam("unknown query parameter %s: use %s", quote(k), strings.Join(names, ", "))
		}
		if len(vs) > 1 {
			return nil, badParam("query parameter %s is given %d times", quote(k), len(vs))
		}
		out[k] = vs[0]
	}
	for _, p := range allowed {
		if _, ok := out[p.name]; p.required && !ok {
			return nil, badParam("query parameter %s is required", p.name)
		}
	}
	return out, nil
}
