package click

import (
	"strings"
	"testing"
	"time"
)

// validMS is the event time of most validCases.
var validMS = time.Date(2024, 1, 1, 10, 1, 35, 123e6, time.UTC).UnixMilli()

// validCases are lines Parse accepts, with the click each gives.
var validCases = []struct {
	name string
	line string
	want Click
}{
	{"rfc3339 with fraction", `{"event_id":"e1","ad_id":"ad1","timestamp":"2024-01-01T10:01:35.123Z"}`, Click{EventID: "e1", AdID: "ad1", Time: validMS}},
	{"epoch millis", `{"event_id":"e1","ad_id":"ad1","timestamp":1704103295123}`, Click{EventID: "e1", AdID: "ad1", Time: validMS}},
	{"offset converted to UTC", `{"event_id":"e1","ad_id":"ad1","timestamp":"2024-01-01T12:01:35.123+02:00"}`, Click{EventID: "e1", AdID: "ad1", Time: validMS}},
	{"all attributes", `{"event_id":"e","ad_id":"a","timestamp":1704103295123,"user_id":"u","ip":"1.2.3.4","country":"US","device":"mobile","ad_format":"banner"}`,
		Click{EventID: "e", AdID: "a", Time: validMS, UserID: "u", IP: "1.2.3.4", Country: "US", Device: "mobile", AdFormat: "banner"}},
	{"unknown fields ignored", `{"event_id":"e","ad_id":"a","timestamp":1704103295123,"extra":{"x":[1,2]},"n":null}`, Click{EventID: "e", AdID: "a", Time: validMS}},
	{"escapes and unicode", `{"event_id":"e\"\\\u00e9😀","ad_id":"日本","timestamp":1704103295123}`, Click{EventID: "e\"\\é😀", AdID: "日本", Time: validMS}},
	{"surrogate pair escape", `{"event_id":"\ud83d\ude00","ad_id":"a","timestamp":1704103295123}`, Click{EventID: "😀", AdID: "a", Time: validMS}},
	{"empty optional is no value", `{"event_id":"e","ad_id":"a","timestamp":1704103295123,"country":""}`, Click{EventID: "e", AdID: "a", Time: validMS}},
	{"max length ids", `{"event_id":"` + strings.Repeat("x", 256) + `","ad_id":"a","timestamp":1704103295123}`, Click{EventID: strings.Repeat("x", 256), AdID: "a", Time: validMS}},
	{"first millisecond of 2000", `{"event_id":"e","ad_id":"a","timestamp":"2000-01-01T00:00:00Z"}`, Click{EventID: "e", AdID: "a", Time: 946684800000}},
	{"last millisecond of 2100", `{"event_id":"e","ad_id":"a","timestamp":4133980799999}`, Click{EventID: "e", AdID: "a", Time: 4133980799999}},
	{"whitespace around", " \t{ \"event_id\" : \"e\" , \"ad_id\":\"a\",\"timestamp\":1704103295123 } ", Click{EventID: "e", AdID: "a", Time: validMS}},
}

func TestParseValid(t *testing.T) {
	tests := validCases
	var p Parser
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := p.Parse([]byte(tt.line))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			// The encoder's output parses back to the same click.
			back, err := p.Parse(got.AppendJSON(nil))
			if err != nil || back != got {
				t.Fatalf("round trip: %+v, %v", back, err)
			}
		})
	}
}

// rejectCases are lines Parse rejects, with the reason and field.
var rejectCases = []struct {
	name   string
	line   string
	reason Reason
	field  string
}{
	{"empty line", ``, ReasonInvalidJSON, ""},
	{"not json", `hello`, ReasonInvalidJSON, ""},
	{"truncated", `{"event_id":"e","ad_id":"a"`, ReasonInvalidJSON, ""},
	{"trailing garbage", `{"event_id":"e","ad_id":"a","timestamp":1704103295123} x`, ReasonInvalidJSON, ""},
	{"unknown escape", `{"event_id":"a\x41","ad_id":"a","timestamp":1704103295123}`, ReasonInvalidJSON, ""},
	{"leading zero", `{"event_id":"e","ad_id":"a","timestamp":01704103295123}`, ReasonInvalidJSON, ""},
	{"raw control char beside an escape", "{\"event_id\":\"a\x07\\\\n\",\"ad_id\":\"a\",\"timestamp\":1704103295123}", ReasonInvalidJSON, ""},
	{"raw control char", "{\"event_id\":\"a\tb\",\"ad_id\":\"a\",\"timestamp\":1704103295123}", ReasonInvalidJSON, ""},
	{"array", `[1,2]`, ReasonNotObject, ""},
	{"string", `"x"`, ReasonNotObject, ""},
	{"null", `null`, ReasonNotObject, ""},
	{"missing event_id", `{"ad_id":"a","timestamp":1704103295123}`, ReasonMissingField, "event_id"},
	{"missing ad_id", `{"event_id":"e","timestamp":1704103295123}`, ReasonMissingField, "ad_id"},
	{"missing timestamp", `{"event_id":"e","ad_id":"a"}`, ReasonMissingField, "timestamp"},
	{"empty event_id", `{"event_id":"","ad_id":"a","timestamp":1704103295123}`, ReasonEmptyField, "event_id"},
	{"empty ad_id", `{"event_id":"e","ad_id":"","timestamp":1704103295123}`, ReasonEmptyField, "ad_id"},
	{"empty timestamp", `{"event_id":"e","ad_id":"a","timestamp":""}`, ReasonEmptyField, "timestamp"},
	{"numeric event_id", `{"event_id":5,"ad_id":"a","timestamp":1704103295123}`, ReasonWrongType, "event_id"},
	{"null ad_id", `{"event_id":"e","ad_id":null,"timestamp":1704103295123}`, ReasonWrongType, "ad_id"},
	{"numeric country", `{"event_id":"e","ad_id":"a","timestamp":1704103295123,"country":1}`, ReasonWrongType, "country"},
	{"object device", `{"event_id":"e","ad_id":"a","timestamp":1704103295123,"device":{}}`, ReasonWrongType, "device"},
	{"bool timestamp", `{"event_id":"e","ad_id":"a","timestamp":true}`, ReasonWrongType, "timestamp"},
	{"long event_id", `{"event_id":"` + strings.Repeat("x", 257) + `","ad_id":"a","timestamp":1704103295123}`, ReasonFieldTooLong, "event_id"},
	{"long ip", `{"event_id":"e","ad_id":"a","timestamp":1704103295123,"ip":"` + strings.Repeat("x", 257) + `"}`, ReasonFieldTooLong, "ip"},
	{"bad rfc3339", `{"event_id":"e","ad_id":"a","timestamp":"2024-01-01 10:00:00"}`, ReasonBadTimestamp, "timestamp"},
	{"no zone", `{"event_id":"e","ad_id":"a","timestamp":"2024-01-01T10:00:00"}`, ReasonBadTimestamp, "timestamp"},
	{"fractional millis", `{"event_id":"e","ad_id":"a","timestamp":1704103295123.5}`, ReasonBadTimestamp, "timestamp"},
	{"exponent millis", `{"event_id":"e","ad_id":"a","timestamp":1.7e12}`, ReasonBadTimestamp, "timestamp"},
	{"1999", `{"event_id":"e","ad_id":"a","timestamp":"1999-12-31T23:59:59Z"}`, ReasonTimeOutOfRange, "timestamp"},
	{"2101", `{"event_id":"e","ad_id":"a","timestamp":4133980800000}`, ReasonTimeOutOfRange, "timestamp"},
	{"seconds not millis", `{"event_id":"e","ad_id":"a","timestamp":1704103295}`, ReasonTimeOutOfRange, "timestamp"},
	{"huge integer", `{"event_id":"e","ad_id":"a","timestamp":123456789012345678901234567890}`, ReasonTimeOutOfRange, "timestamp"},
	{"duplicate key", `{"event_id":"e","ad_id":"a","ad_id":"b","timestamp":1704103295123}`, ReasonDuplicateField, "ad_id"},
	{"invalid utf8", "{\"event_id\":\"e\xff\",\"ad_id\":\"a\",\"timestamp\":1704103295123}", ReasonInvalidUTF8, ""},
	{"lone surrogate", `{"event_id":"e\ud800","ad_id":"a","timestamp":1704103295123}`, ReasonInvalidUTF8, ""},
	{"reversed surrogates", `{"event_id":"\ude00\ud83d","ad_id":"a","timestamp":1704103295123}`, ReasonInvalidUTF8, ""},
	{"too long line", `{"event_id":"e","ad_id":"a","timestamp":1704103295123,"pad":"` + strings.Repeat("p", MaxLineBytes) + `"}`, ReasonTooLong, ""},
	{"deep nesting", strings.Repeat("[", 60000), ReasonInvalidJSON, ""},
}

func TestParseRejects(t *testing.T) {
	tests := rejectCases
	var p Parser
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := p.Parse([]byte(tt.line))
			r, ok := AsReject(err)
			if !ok {
				t.Fatalf("Parse(%.80q) = %v, want a reject %s", tt.line, err, tt.reason)
			}
			if r.Reason != tt.reason || r.Field != tt.field {
				t.Fatalf("got %s field %q (%v), want %s field %q", r.Reason, r.Field, r, tt.reason, tt.field)
			}
			if r.Detail == "" {
				t.Fatal("reject without detail")
			}
		})
	}
}

func TestMinuteOf(t *testing.T) {
	tests := []struct{ ms, want int64 }{
		{0, 0}, {59999, 0}, {60000, 60}, {1704103295123, 1704103260}, {-1, -60}, {-60000, -60}, {-60001, -120},
	}
	for _, tt := range tests {
		if got := MinuteOf(tt.ms); got != tt.want {
			t.Errorf("MinuteOf(%d) = %d, want %d", tt.ms, got, tt.want)
		}
	}
}

// FuzzParse: no input panics the parser; every reject names a known reason;
// every accepted click satisfies the limits of docs/spec.md and survives a round trip.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"event_id":"e1","ad_id":"ad1","timestamp":"2024-01-01T10:01:35.123Z","country":"US"}`,
		`{"event_id":"e1","ad_id":"ad1","timestamp":1704103295123}`,
		`{"event_id":"\ud83d\ude00","ad_id":"a\\","timestamp":1}`, `[]`, `{`, "\xff", `{"a":"\u`,
	} {
		f.Add([]byte(s))
	}
	known := map[Reason]bool{}
	for _, r := range Reasons {
		known[r] = true
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var p Parser
		c, err := p.Parse(line)
		if err != nil {
			r, ok := AsReject(err)
			if !ok || !known[r.Reason] || r.Detail == "" {
				t.Fatalf("bad reject %#v for %q", err, line)
			}
			return
		}
		if c.EventID == "" || c.AdID == "" || len(c.EventID) > MaxFieldBytes || len(c.AdID) > MaxFieldBytes {
			t.Fatalf("accepted invalid ids: %+v", c)
		}
		if c.Time < MinTime.UnixMilli() || c.Time >= MaxTime.UnixMilli() {
			t.Fatalf("accepted out-of-range time %d", c.Time)
		}
		back, err := p.Parse(c.AppendJSON(nil))
		if err != nil || back != c {
			t.Fatalf("round trip of %+v: %+v, %v", c, back, err)
		}
	})
}
