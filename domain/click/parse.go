package click

import (
	"bytes"
	"fmt"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// The parser is one pass over the line that validates it as strict RFC 8259
// JSON and, on the way, notes where the values of the known top-level keys
// are. Only those values are then decoded. It replaced fastjson (validate,
// then parse into a tree, then visit), which made three passes and allocated
// a string per field; parsing was the largest per-click cost of the whole
// aggregation. Reasons and their precedence are the old parser's exactly
// (FuzzMatchesLegacy), and both agree with the encoding/json reference
// (FuzzMatchesReference).

// Parser validates lines into clicks. It reuses its buffers, so it is not safe
// for concurrent use: give each goroutine (each DoFn instance) its own.
type Parser struct {
	vals    [len(fieldNames)]span
	scratch []byte // unescaped keys and values
	ids     []byte // event_id, user_id and ip, made into one string

	// intern maps the values of low-cardinality fields (ad_id, country,
	// device, ad_format) to one shared string, so a click costs no string
	// allocation for them. Bounded: cleared when full.
	intern map[string]string
}

// internMax bounds Parser.intern; past it the table starts over.
const internMax = 1 << 14

// span is where a known key's value lies in the line.
type span struct {
	start, end int   // the value's bytes; for a string, inside the quotes
	kind       vkind // 0: key not seen
	escaped    bool  // a string with escapes: decode before use
}

type vkind uint8

const (
	kNone vkind = iota
	kObject
	kArray
	kString
	kNumber
	kTrue
	kFalse
	kNull
)

// String names JSON types as the old parser's messages did.
func (k vkind) String() string {
	switch k {
	case kObject:
		return "object"
	case kArray:
		return "array"
	case kString:
		return "string"
	case kNumber:
		return "number"
	case kTrue:
		return "true"
	case kFalse:
		return "false"
	case kNull:
		return "null"
	}
	return "none"
}

// Parse validates one JSON line (without its newline) under docs/spec.md §1. A non-nil
// error is always a *RejectError. It never panics, whatever the input.
func (ps *Parser) Parse(line []byte) (Click, error) {
	var c Click
	if rerr := precheck(line); rerr != nil {
		return c, rerr
	}
	ps.vals = [len(fieldNames)]span{}
	ps.scratch = ps.scratch[:0]
	sc := scanner{b: line}
	top, dup := ps.scanTop(&sc)
	if sc.err != "" {
		return c, reject(ReasonInvalidJSON, "", "%s", sc.err)
	}
	if top != kObject {
		return c, reject(ReasonNotObject, "", "line is a JSON %s, not an object", top)
	}
	if dup >= 0 {
		return c, reject(ReasonDuplicateField, fieldNames[dup], "field appears more than once")
	}
	var (
		rerr          *RejectError
		eid, uid, ip  []byte
		haveU, haveIP bool
	)
	// One field's raw value: the same checks, in the same order, as before.
	str := func(i int, required bool) ([]byte, bool) {
		if rerr != nil {
			return nil, false
		}
		v := ps.vals[i]
		if v.kind == kNone {
			if required {
				rerr = reject(ReasonMissingField, fieldNames[i], "required field is missing")
			}
			return nil, false
		}
		if v.kind != kString {
			rerr = reject(ReasonWrongType, fieldNames[i], "want a string, got %s", v.kind)
			return nil, false
		}
		b := ps.stringValue(line, v)
		if len(b) > MaxFieldBytes {
			rerr = reject(ReasonFieldTooLong, fieldNames[i], "%d bytes, limit %d", len(b), MaxFieldBytes)
			return nil, false
		}
		if required && len(b) == 0 {
			rerr = reject(ReasonEmptyField, fieldNames[i], "required field is empty")
			return nil, false
		}
		if v.escaped && !utf8.Valid(b) { // the line is valid UTF-8, so only escapes could break it
			rerr = reject(ReasonInvalidUTF8, fieldNames[i], "field is not valid UTF-8")
			return nil, false
		}
		return b, len(b) > 0
	}
	eid, _ = str(fEventID, true)
	ad, _ := str(fAdID, true)
	c.AdID = ps.interned(ad)
	uid, haveU = str(fUserID, false)
	ip, haveIP = str(fIP, false)
	country, _ := str(fCountry, false)
	c.Country = ps.interned(country)
	device, _ := str(fDevice, false)
	c.Device = ps.interned(device)
	format, _ := str(fAdFormat, false)
	c.AdFormat = ps.interned(format)
	if rerr != nil {
		return Click{}, rerr
	}
	ts, rerr := parseTimestamp(ps, line, ps.vals[fTimestamp])
	if rerr != nil {
		return Click{}, rerr
	}
	c.Time = ts
	// The unique-per-click strings share one allocation.
	ps.ids = append(append(append(ps.ids[:0], eid...), uid...), ip...)
	all := string(ps.ids)
	c.EventID = all[:len(eid)]
	if haveU {
		c.UserID = all[len(eid) : len(eid)+len(uid)]
	}
	if haveIP {
		c.IP = all[len(eid)+len(uid):]
	}
	return c, nil
}

// precheck applies the checks that come before JSON validation, in their
// order of precedence: length, UTF-8, unpaired surrogate escapes, nesting.
func precheck(line []byte) *RejectError {
	if len(line) > MaxLineBytes {
		return reject(ReasonTooLong, "", "line is %d bytes, limit %d", len(line), MaxLineBytes)
	}
	if !utf8.Valid(line) {
		return reject(ReasonInvalidUTF8, "", "line is not valid UTF-8")
	}
	if hasLoneSurrogate(line) {
		return reject(ReasonInvalidUTF8, "", "line has a \\u escape of an unpaired UTF-16 surrogate")
	}
	// Counting brackets is vectorised; walking the line is needed only when
	// there are enough of them to nest too deep. Past this check the
	// scanner's recursion is bounded.
	if bytes.Count(line, []byte{'['})+bytes.Count(line, []byte{'{'}) > MaxNesting {
		if d := nestingDepth(line); d > MaxNesting {
			return reject(ReasonInvalidJSON, "", "nested %d levels deep, limit %d", d, MaxNesting)
		}
	}
	return nil
}

// interned returns b as a string shared with earlier equal values.
func (ps *Parser) interned(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if s, ok := ps.intern[string(b)]; ok { // no allocation for the lookup
		return s
	}
	if ps.intern == nil || len(ps.intern) >= internMax {
		ps.intern = make(map[string]string, 64)
	}
	s := string(b)
	ps.intern[s] = s
	return s
}

// stringValue returns a string value's bytes, decoded when it has escapes
// (into the scratch buffer, valid until the next Parse).
func (ps *Parser) stringValue(line []byte, v span) []byte {
	raw := line[v.start:v.end]
	if !v.escaped {
		return raw
	}
	n := len(ps.scratch)
	ps.scratch = unescape(ps.scratch, raw)
	return ps.scratch[n:]
}

// scanTop scans the whole line. It returns the top-level value's kind and the
// first known key that appeared twice (-1: none); sc.err is set if the line
// is not valid JSON.
func (ps *Parser) scanTop(sc *scanner) (vkind, int) {
	sc.ws()
	if sc.i >= len(sc.b) {
		sc.fail("empty line")
		return kNone, -1
	}
	dup := -1
	var top vkind
	if sc.b[sc.i] != '{' {
		top = sc.value()
	} else {
		top = kObject
		sc.object(func(kstart, kend int, kescaped bool, vstart int, kind vkind) {
			key := sc.b[kstart:kend]
			if kescaped {
				n := len(ps.scratch)
				ps.scratch = unescape(ps.scratch, key)
				key = ps.scratch[n:]
			}
			i := fieldIndex(key)
			if i < 0 {
				return
			}
			if ps.vals[i].kind != kNone && dup < 0 {
				dup = i
			}
			v := span{start: vstart, end: sc.i, kind: kind}
			if kind == kString {
				v.start, v.end, v.escaped = vstart+1, sc.i-1, sc.lastEscaped
			}
			ps.vals[i] = v
		})
	}
	if sc.err != "" {
		return kNone, -1
	}
	sc.ws()
	if sc.i != len(sc.b) {
		sc.fail("unexpected data after the top-level value")
		return kNone, -1
	}
	return top, dup
}

// scanner validates JSON. The first error is kept in err, with the offset;
// once set, every method returns at once.
type scanner struct {
	b           []byte
	i           int
	err         string
	lastEscaped bool // the last string scanned had escapes
}

func (sc *scanner) fail(msg string) {
	if sc.err == "" {
		sc.err = fmt.Sprintf("%s at offset %d", msg, sc.i)
	}
}

func (sc *scanner) ws() {
	if sc.i < len(sc.b) && sc.b[sc.i] > ' ' { // compact JSON: no whitespace
		return
	}
	for sc.i < len(sc.b) {
		switch sc.b[sc.i] {
		case ' ', '\t', '\n', '\r':
			sc.i++
		default:
			return
		}
	}
}

func (sc *scanner) expect(c byte) {
	if sc.err != "" {
		return
	}
	if sc.i >= len(sc.b) || sc.b[sc.i] != c {
		sc.fail(fmt.Sprintf("want %q", c))
		return
	}
	sc.i++
}

// value scans one value starting at sc.i (no leading whitespace). It
// recurses into arrays and objects: Parse bounded their nesting before.
func (sc *scanner) value() vkind {
	if sc.err != "" {
		return kNone
	}
	if sc.i >= len(sc.b) {
		sc.fail("want a value")
		return kNone
	}
	switch c := sc.b[sc.i]; {
	case c == '"':
		sc.str()
		return kString
	case c == '{':
		sc.object(nil)
		return kObject
	case c == '[':
		sc.items(']', func() { sc.value() })
		return kArray
	case c == '-' || (c >= '0' && c <= '9'):
		sc.number()
		return kNumber
	case c == 't':
		sc.literal("true")
		return kTrue
	case c == 'f':
		sc.literal("false")
		return kFalse
	case c == 'n':
		sc.literal("null")
		return kNull
	}
	sc.fail("want a value")
	return kNone
}

// items scans the members of an object or the elements of an array, from
// the opening bracket at sc.i up to and including close; item scans one.
func (sc *scanner) items(close byte, item func()) {
	sc.i++
	sc.ws()
	if sc.i < len(sc.b) && sc.b[sc.i] == close {
		sc.i++
		return
	}
	for sc.err == "" {
		item()
		sc.ws()
		if sc.i < len(sc.b) && sc.b[sc.i] == ',' {
			sc.i++
			sc.ws()
			continue
		}
		sc.expect(close)
		return
	}
}

// object scans an object starting at sc.i. member, if not nil, is told of
// each valid member: its key's span (escapes not decoded), and where its
// value starts and of what kind it is (it ends at sc.i).
func (sc *scanner) object(member func(kstart, kend int, kescaped bool, vstart int, kind vkind)) {
	sc.items('}', func() {
		kstart, kend, kescaped := sc.str()
		sc.ws()
		sc.expect(':')
		sc.ws()
		vstart := sc.i
		kind := sc.value()
		if member != nil && sc.err == "" {
			member(kstart, kend, kescaped, vstart, kind)
		}
	})
}

func (sc *scanner) literal(lit string) {
	if !bytes.HasPrefix(sc.b[sc.i:], []byte(lit)) {
		sc.fail("want " + lit)
		return
	}
	sc.i += len(lit)
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (sc *scanner) number() {
	b := sc.b
	i := sc.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		sc.i = i
		sc.fail("want a digit")
		return
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			sc.i = i
			sc.fail("want a digit after the decimal point")
			return
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			sc.i = i
			sc.fail("want a digit in the exponent")
			return
		}
	}
	sc.i = i
}

// str scans a string starting at its opening quote and returns the span of
// its contents and whether it has escapes.
func (sc *scanner) str() (start, end int, escaped bool) {
	if sc.err != "" {
		return 0, 0, false
	}
	if sc.i >= len(sc.b) || sc.b[sc.i] != '"' {
		sc.fail("want a string")
		return 0, 0, false
	}
	b := sc.b
	i := sc.i + 1
	start = i
	for i < len(b) {
		for i < len(b) && plainByte[b[i]] { // the common bytes, in a tight loop
			i++
		}
		if i >= len(b) {
			break
		}
		c := b[i]
		switch {
		case c == '"':
			sc.i = i + 1
			sc.lastEscaped = escaped
			return start, i, escaped
		case c == '\\':
			escaped = true
			if i+1 >= len(b) {
				sc.i = i
				sc.fail("unterminated escape")
				return 0, 0, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if _, ok := hex4(b, i+2); !ok {
					sc.i = i
					sc.fail(`bad \u escape`)
					return 0, 0, false
				}
				i += 6
			default:
				sc.i = i
				sc.fail("unknown escape")
				return 0, 0, false
			}
		case c < 0x20:
			sc.i = i
			sc.fail("control character in string")
			return 0, 0, false
		default:
			i++
		}
	}
	sc.i = i
	sc.fail("unterminated string")
	return 0, 0, false
}

// plainByte marks the bytes a string holds as themselves: everything but
// the quote, the backslash and control characters.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// unescape appends the decoded form of a scanned string's contents (escapes
// known to be valid, surrogates known to be paired) to dst.
func unescape(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			j := bytes.IndexByte(s[i:], '\\')
			if j < 0 {
				return append(dst, s[i:]...)
			}
			dst = append(dst, s[i:i+j]...)
			i += j
			continue
		}
		switch s[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, _ := hex4(s, i+2)
			i += 6
			if utf16.IsSurrogate(r) {
				if lo, ok := hex4(s, i+2); ok && i+1 < len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if d := utf16.DecodeRune(r, lo); d != utf8.RuneError {
						r = d
						i += 6
					}
				}
			}
			dst = utf8.AppendRune(dst, r) // a lone surrogate becomes U+FFFD; rejected before
			continue
		default: // '"', '\\', '/'
			dst = append(dst, s[i+1])
		}
		i += 2
	}
	return dst
}

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
