package result

import (
	"bytes"
	"strconv"
	"time"
)

// decodeCounts parses the exact form AppendJSON or AppendTopicJSON writes
// for a count or a filtered count — nine records in ten on the results topic — without
// encoding/json, which the DB writer spent more time in than in its store
// writes. ok is false for anything else, including any string with an
// escape or a non-ASCII byte, a number not in plain integer form, extra
// whitespace or fields in another order; UnmarshalJSON then parses it the
// general way. Where ok is true the record is the one the general way
// gives (FuzzDecodeCounts checks that).
func decodeCounts(b []byte) (Record, bool) {
	d := fastDecoder{b: b}
	switch {
	case d.start(`{"type":"count","ad_id":"`):
		ad, m, n, dg, ok := d.str(), d.minute(), d.count(), d.digest(), d.end()
		if !ok || !d.ok || ad == "" {
			return Record{}, false
		}
		return Record{Count: &Count{AdID: ad, Minute: m, Count: n, Digest: dg}}, true
	case d.start(`{"type":"filtered_count","ad_id":"`):
		ad := d.str()
		d.lit(`,"filter_id":"`)
		f, m, n, dg, ok := d.str(), d.minute(), d.count(), d.digest(), d.end()
		if !ok || !d.ok || ad == "" || f == "" {
			return Record{}, false
		}
		return Record{Filtered: &FilteredCount{AdID: ad, FilterID: f, Minute: m, Count: n, Digest: dg}}, true
	}
	return Record{}, false
}

// fastDecoder reads b from the front; once a read fails, ok stays false.
type fastDecoder struct {
	b  []byte
	ok bool
}

// start consumes the opening literal s and starts a parse.
func (d *fastDecoder) start(s string) bool {
	d.ok = true
	d.lit(s)
	return d.ok
}

// lit consumes s.
func (d *fastDecoder) lit(s string) {
	if !d.ok || !bytes.HasPrefix(d.b, []byte(s)) {
		d.ok = false
		return
	}
	d.b = d.b[len(s):]
}

// str reads a string's content up to its closing quote (consumed), refusing
// escapes, control and non-ASCII bytes, which encoding/json would rewrite.
func (d *fastDecoder) str() string {
	if !d.ok {
		return ""
	}
	for i, c := range d.b {
		switch {
		case c == '"':
			s := string(d.b[:i])
			d.b = d.b[i+1:]
			return s
		case c == '\\' || c < 0x20 || c >= 0x80:
			d.ok = false
			return ""
		}
	}
	d.ok = false
	return ""
}

// minute reads `,"minute":"<RFC 3339>"` after a string's closing quote.
func (d *fastDecoder) minute() int64 {
	d.lit(`,"minute":"`)
	s := d.str()
	if !d.ok {
		return 0
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil || t.Unix()%60 != 0 {
		d.ok = false
		return 0
	}
	return t.Unix()
}

// count reads `,"count":<integer>`: an optional minus, then 0 or digits
// without a leading zero, within int64.
func (d *fastDecoder) count() int64 {
	d.lit(`,"count":`)
	if !d.ok {
		return 0
	}
	i := 0
	if i < len(d.b) && d.b[i] == '-' {
		i++
	}
	start := i
	for i < len(d.b) && d.b[i] >= '0' && d.b[i] <= '9' {
		i++
	}
	if i == start || (d.b[start] == '0' && i > start+1) {
		d.ok = false
		return 0
	}
	n, err := strconv.ParseInt(string(d.b[:i]), 10, 64)
	if err != nil {
		d.ok = false
		return 0
	}
	d.b = d.b[i:]
	return n
}

// digest reads an optional `,"digest":"<32 hex or 22 base64url>"`; without
// one the digest is unknown, as in the general parse. It parses in place:
// anything but the two forms (an escape included) is refused here and left
// to the general parse.
func (d *fastDecoder) digest() Digest {
	const pre = `,"digest":"`
	if !d.ok || !bytes.HasPrefix(d.b, []byte(pre)) {
		return Digest{}
	}
	d.b = d.b[len(pre):]
	i := bytes.IndexByte(d.b, '"')
	if i < 0 {
		d.ok = false
		return Digest{}
	}
	dg, err := parseDigestText(d.b[:i])
	if err != nil {
		d.ok = false
		return Digest{}
	}
	d.b = d.b[i+1:]
	return dg
}

// end reads the closing brace, which must be the last byte.
func (d *fastDecoder) end() bool {
	return d.ok && len(d.b) == 1 && d.b[0] == '}'
}
