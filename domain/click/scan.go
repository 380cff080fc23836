package click

import (
	"bytes"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// The scanner: one pass of strict RFC 8259 validation that notes where the
// values of the known top-level keys lie (see Parser).

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
		// The common bytes, in a tight loop. Indexing rest from 0 lets the
		// compiler prove every index in range: no bounds check per byte.
		rest := b[i:]
		n := 0
		for n < len(rest) && plainByte[rest[n]] {
			n++
		}
		i += n
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
