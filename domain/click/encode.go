package click

import "time"

// AppendJSON appends c as one JSON object (no newline), the docs/spec.md §1 form with an
// RFC 3339 timestamp. Parse(AppendJSON(c)) == c for every valid click.
func (c *Click) AppendJSON(b []byte) []byte {
	b = append(b, `{"event_id":`...)
	b = AppendJSONString(b, c.EventID)
	b = append(b, `,"ad_id":`...)
	b = AppendJSONString(b, c.AdID)
	b = append(b, `,"timestamp":"`...)
	b = time.UnixMilli(c.Time).UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = append(b, '"')
	for _, f := range [...]struct {
		name, val string
	}{{"user_id", c.UserID}, {"ip", c.IP}, {"country", c.Country}, {"device", c.Device}, {"ad_format", c.AdFormat}} {
		if f.val == "" {
			continue
		}
		b = append(b, ',', '"')
		b = append(b, f.name...)
		b = append(b, '"', ':')
		b = AppendJSONString(b, f.val)
	}
	return append(b, '}')
}

// AppendJSONString appends s as a JSON string literal. s must be valid UTF-8
// (every Click field is); control characters are escaped as \u00XX.
func AppendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\t':
			b = append(b, '\\', 't')
		case '\r':
			b = append(b, '\\', 'r')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
