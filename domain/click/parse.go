package click

import (
	"bytes"
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
	eidLen  int    // of event_id in ids
	uidLen  int    // of user_id in ids

	// intern maps the values of low-cardinality fields (ad_id, country,
	// device, ad_format) to one shared string, so a click costs no string
	// allocation for them. Bounded: cleared when full.
	intern map[string]string
}

// internMax bounds Parser.intern; past it the table starts over.
const internMax = 1 << 14

// Parse validates one JSON line (without its newline) under docs/spec.md §1. A non-nil
// error is always a *RejectError. It never panics, whatever the input.
func (ps *Parser) Parse(line []byte) (Click, error) {
	var c Click
	if rerr := ps.scan(line); rerr != nil {
		return c, rerr
	}
	if rerr := ps.stringFields(line, &c); rerr != nil {
		return Click{}, rerr
	}
	ms, rerr := parseTimestamp(ps, line, ps.vals[fTimestamp])
	if rerr != nil {
		return Click{}, rerr
	}
	c.Time = ms
	ps.setIDs(&c)
	return c, nil
}

// scan applies the prechecks, then scans the line as JSON, noting where the
// known keys' values are. It rejects a line that is not one JSON object
// without duplicate known keys.
func (ps *Parser) scan(line []byte) *RejectError {
	if rerr := precheck(line); rerr != nil {
		return rerr
	}
	ps.vals = [len(fieldNames)]span{}
	ps.scratch = ps.scratch[:0]
	sc := scanner{b: line}
	top, dup := ps.scanTop(&sc)
	if sc.err != "" {
		return reject(ReasonInvalidJSON, "", "%s", sc.err)
	}
	if top != kObject {
		return reject(ReasonNotObject, "", "line is a JSON %s, not an object", top)
	}
	if dup >= 0 {
		return reject(ReasonDuplicateField, fieldNames[dup], "field appears more than once")
	}
	return nil
}

// stringFields checks the string fields in their order of precedence (with
// several faults in a line, the first gives the reason). It sets c's
// low-cardinality fields, interned, and gathers event_id, user_id and ip in
// ps.ids for setIDs.
func (ps *Parser) stringFields(line []byte, c *Click) *RejectError {
	var rerr *RejectError
	// One field's checked value, nil when absent; after a failed check
	// every later call returns nil and rerr keeps the first failure.
	str := func(i int, required bool) []byte {
		if rerr != nil {
			return nil
		}
		v := ps.vals[i]
		if v.kind == kNone {
			if required {
				rerr = reject(ReasonMissingField, fieldNames[i], "required field is missing")
			}
			return nil
		}
		if v.kind != kString {
			rerr = reject(ReasonWrongType, fieldNames[i], "want a string, got %s", v.kind)
			return nil
		}
		b := ps.stringValue(line, v)
		if len(b) > MaxFieldBytes {
			rerr = reject(ReasonFieldTooLong, fieldNames[i], "%d bytes, limit %d", len(b), MaxFieldBytes)
			return nil
		}
		if required && len(b) == 0 {
			rerr = reject(ReasonEmptyField, fieldNames[i], "required field is empty")
			return nil
		}
		if v.escaped && !utf8.Valid(b) { // the line is valid UTF-8, so only escapes could break it
			rerr = reject(ReasonInvalidUTF8, fieldNames[i], "field is not valid UTF-8")
			return nil
		}
		return b
	}
	eid := str(fEventID, true)
	c.AdID = ps.interned(str(fAdID, true))
	uid := str(fUserID, false)
	ip := str(fIP, false)
	c.Country = ps.interned(str(fCountry, false))
	c.Device = ps.interned(str(fDevice, false))
	c.AdFormat = ps.interned(str(fAdFormat, false))
	ps.ids = append(append(append(ps.ids[:0], eid...), uid...), ip...)
	ps.eidLen, ps.uidLen = len(eid), len(uid)
	return rerr
}

// setIDs sets c's unique-per-click strings from ps.ids: one allocation for
// the three.
func (ps *Parser) setIDs(c *Click) {
	all := string(ps.ids)
	c.EventID = all[:ps.eidLen]
	c.UserID = all[ps.eidLen : ps.eidLen+ps.uidLen]
	c.IP = all[ps.eidLen+ps.uidLen:]
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
