package clickgen

import (
	"strconv"
	"strings"

	"github.com/adclick/adclick/domain/click"
)

// mctx is what a malformed variant may use: a fresh event_id that no valid
// line carries (so a rejected line can never be mistaken for a counted click),
// an ad and a current timestamp in both forms.
type mctx struct {
	id   string // `"<event_id>"`, quoted
	ad   string // `"ad-000042"`, quoted
	ms   string // `1767225600000`
	rfc  string // `"2026-01-01T00:00:00Z"`, quoted
	pad  string // a long string for over-long lines
	long string // MaxFieldBytes+1 bytes
}

// variant is one way a line can be malformed, with the reason click.Parser gives it.
type variant struct {
	reason click.Reason
	make   func(c *mctx) string
}

func obj(fields ...string) string { return "{" + strings.Join(fields, ",") + "}" }

// variants covers every docs/spec.md §1 reject kind, several ways each.
var variants = []variant{
	{click.ReasonInvalidJSON, func(c *mctx) string {
		return obj(`"event_id":`+c.id, `"ad_id":`+c.ad)[:20] // cut mid-line
	}},
	{click.ReasonInvalidJSON, func(c *mctx) string { return "GET /click?ad=ad-000001 HTTP/1.1 200" }},
	{click.ReasonInvalidJSON, func(c *mctx) string {
		return `{"event_id":` + c.id + `,"ad_id":` + c.ad + `,"timestamp":` + c.ms + `,}`
	}},
	{click.ReasonInvalidJSON, func(c *mctx) string {
		return `{'event_id':` + c.id + `,"ad_id":` + c.ad + `,"timestamp":` + c.ms + `}`
	}},
	{click.ReasonNotObject, func(c *mctx) string { return "[" + c.id + "," + c.ad + "," + c.ms + "]" }},
	{click.ReasonNotObject, func(c *mctx) string { return c.id }},
	{click.ReasonNotObject, func(c *mctx) string { return c.ms }},
	{click.ReasonNotObject, func(c *mctx) string { return "null" }},
	{click.ReasonDuplicateField, func(c *mctx) string {
		return obj(`"event_id":`+c.id, `"ad_id":`+c.ad, `"ad_id":"ad-999999"`, `"timestamp":`+c.ms)
	}},
	{click.ReasonMissingField, func(c *mctx) string { return obj(`"ad_id":`+c.ad, `"timestamp":`+c.ms) }},
	{click.ReasonMissingField, func(c *mctx) string { return obj(`"event_id":`+c.id, `"timestamp":`+c.rfc) }},
	{click.ReasonMissingField, func(c *mctx) string { return obj(`"event_id":`+c.id, `"ad_id":`+c.ad, `"country":"US"`) }},
	{click.ReasonEmptyField, func(c *mctx) string { return obj(`"event_id":""`, `"ad_id":`+c.ad, `"timestamp":`+c.ms) }},
	{click.ReasonEmptyField, func(c *mctx) string { return obj(`"event_id":`+c.id, `"ad_id":""`, `"timestamp":`+c.ms) }},
	{click.ReasonEmptyField, func(c *mctx) string { return obj(`"event_id":`+c.id, `"ad_id":`+c.ad, `"timestamp":""`) }},
	{click.ReasonWrongType, func(c *mctx) string { return obj(`"event_id":12345`, `"ad_id":`+c.ad, `"timestamp":`+c.ms) }},
	{click.ReasonWrongType, func(c *mctx) string { return obj(`"event_id":`+c.id, `"ad_id":null`, `"timestamp":`+c.ms) }},
	{click.ReasonWrongType, func(c *mctx) string { return obj(`"event_id":`+c.id, `"ad_id":`+c.ad, `"timestamp":true`) }},
	{click.ReasonWrongType, func(c *mctx) string {
		return obj(`"event_id":`+c.id, `"ad_id":`+c.ad, `"timestamp":{"ms":`+c.ms+`}`)
	}},
	{click.ReasonWrongType, func(c *mctx) string {
		return obj(`"event_id":`+c.id, `"ad_id":`+c.ad, `"timestamp":`+c.ms, `"country":840`)
	}},
	{click.ReasonWrongType, func(c *mctx) string {
		return obj(`"event_id":`+c.id, `"ad_id":`+c.ad, `"timestamp":`+c.rfc, `"device":["mobile"]`)
	}},
	{click.ReasonFieldTooLong, func(c *mctx) string {
		return obj(`"event_id":"`+c.long+`"`, `"ad_id":`+c.ad, `"timestamp":`+c.ms)
	}},
	{click.ReasonFieldTooLong, func(c *mctx) string {
		return obj(`"event_id":`+c.id, `"ad_id":`+c.ad, `"timestamp":`+c.ms, `"user_id":"`+c.long+`"`)
	}},
	{click.ReasonBadTimestamp, func(c *mctx) string { return obj(`"event_id":`+c.id, `"ad_id":`+c.ad, `"timestamp":"yesterday"`) }},
	{click.ReasonBadTimestamp, func(c *mctx) string {
		return obj(`"event_id":`+c.id, `"ad_id":`+c.ad, `"timestamp":"2026-13-01T00:00:00Z"`)
	}},
	{click.ReasonBadTimestamp, func(c *mctx) string {
		return obj(`"event_id":`+c.id, `"ad_id":`+c.ad, `"timestamp":"2026-01-01 10:00:00"`)
	}},
	{click.ReasonBadTimestamp, func(c *mctx) string { return obj(`"event_id":`+c.id, `"ad_id":`+c.ad, `"timestamp":`+c.ms+`.5`) }},
	{click.ReasonBadTimestamp, func(c *mctx) string { return obj(`"event_id":`+c.id, `"ad_id":`+c.ad, `"timestamp":1.7e12`) }},
	{click.ReasonTimeOutOfRange, func(c *mctx) string {
		return obj(`"event_id":`+c.id, `"ad_id":`+c.ad, `"timestamp":"1999-12-31T23:59:59.999Z"`)
	}},
	{click.ReasonTimeOutOfRange, func(c *mctx) string {
		return obj(`"event_id":`+c.id, `"ad_id":`+c.ad, `"timestamp":"2101-01-01T00:00:00Z"`)
	}},
	{click.ReasonTimeOutOfRange, func(c *mctx) string { return obj(`"event_id":`+c.id, `"ad_id":`+c.ad, `"timestamp":-1`) }},
	{click.ReasonTimeOutOfRange, func(c *mctx) string {
		return obj(`"event_id":`+c.id, `"ad_id":`+c.ad, `"timestamp":`+c.ms[:len(c.ms)-3]) // epoch seconds by mistake: 1970
	}},
	{click.ReasonTimeOutOfRange, func(c *mctx) string {
		return obj(`"event_id":`+c.id, `"ad_id":`+c.ad, `"timestamp":99999999999999999999`)
	}},
	{click.ReasonTooLong, func(c *mctx) string {
		return obj(`"event_id":`+c.id, `"ad_id":`+c.ad, `"timestamp":`+c.ms, `"debug":"`+c.pad+`"`)
	}},
	{click.ReasonInvalidUTF8, func(c *mctx) string {
		return obj(`"event_id":`+c.id, "\"ad_id\":\"ad-\xff\xfe\"", `"timestamp":`+c.ms)
	}},
	{click.ReasonInvalidUTF8, func(c *mctx) string {
		return obj(`"event_id":`+c.id, `"ad_id":`+c.ad, `"timestamp":`+c.ms, "\"country\":\"\xc3\"")
	}},
	{click.ReasonInvalidUTF8, func(c *mctx) string {
		return obj(`"event_id":`+c.id, `"ad_id":"ad-\ud800"`, `"timestamp":`+c.ms) // an unpaired surrogate escape
	}},
}

// MalformedVariants is how many distinct malformed line shapes the generator
// makes, for tests that want to see each at least once.
func MalformedVariants() int { return len(variants) }

func (g *Generator) malformed() Line {
	v := variants[g.r.IntN(len(variants))]
	id := g.next
	g.next++ // the id is burnt: no valid line will ever carry it
	now := int64(g.base)
	var idb []byte
	idb = append(idb, '"')
	idb = g.appendID(idb, id)
	idb = append(idb, '"')
	if g.pad == "" {
		g.pad = strings.Repeat("x", click.MaxLineBytes)
	}
	c := mctx{
		id:   string(idb),
		ad:   `"` + string(appendAd(nil, uint32(g.zipf.Uint64()))) + `"`,
		ms:   strconv.FormatInt(now, 10),
		rfc:  string(appendTime(nil, now, false)),
		pad:  g.pad,
		long: g.pad[:click.MaxFieldBytes+1],
	}
	g.buf = append(g.buf[:0], v.make(&c)...)
	return Line{Kind: Malformed, Data: g.buf, Reason: v.reason}
}
