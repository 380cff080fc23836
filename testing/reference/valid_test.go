package reference

import (
	"strings"
	"testing"
)

// TestValid pins the oracle's own reading of docs/spec.md §1, one step of
// Valid per case, so a change to the oracle cannot pass unnoticed through
// the differential tests that use it.
func TestValid(t *testing.T) {
	const ok = `{"event_id":"e","ad_id":"a","timestamp":1704103295123,"country":"US","device":"mobile","ad_format":"banner"}`
	tests := []struct {
		name string
		line string
		want bool
		c    Click
	}{
		{"valid", ok, true, Click{EventID: "e", AdID: "a", Country: "US", Device: "mobile", Format: "banner", Minute: 1704103260}},
		{"rfc3339", `{"event_id":"e","ad_id":"a","timestamp":"2024-01-01T10:01:35.123Z"}`, true, Click{EventID: "e", AdID: "a", Minute: 1704103260}},
		{"unknown duplicate key allowed", `{"x":1,"x":2,"event_id":"e","ad_id":"a","timestamp":1704103295123}`, true, Click{EventID: "e", AdID: "a", Minute: 1704103260}},
		{"too long", `{"event_id":"` + strings.Repeat("x", 64*1024) + `"}`, false, Click{}},
		{"too deep", `{"event_id":"e","ad_id":"a","timestamp":1704103295123,"x":` + strings.Repeat("[", 65) + strings.Repeat("]", 65) + `}`, false, Click{}},
		{"lone surrogate", `{"event_id":"\ud800","ad_id":"a","timestamp":1704103295123}`, false, Click{}},
		{"not an object", `[1]`, false, Click{}},
		{"trailing data", ok + ` x`, false, Click{}},
		{"duplicate known key", `{"event_id":"e","event_id":"f","ad_id":"a","timestamp":1704103295123}`, false, Click{}},
		{"empty required", `{"event_id":"","ad_id":"a","timestamp":1704103295123}`, false, Click{}},
		{"optional of wrong type", `{"event_id":"e","ad_id":"a","timestamp":1704103295123,"ip":5}`, false, Click{}},
		{"field too long", `{"event_id":"e","ad_id":"a","timestamp":1704103295123,"device":"` + strings.Repeat("d", 257) + `"}`, false, Click{}},
		{"no timestamp", `{"event_id":"e","ad_id":"a"}`, false, Click{}},
		{"fractional epoch", `{"event_id":"e","ad_id":"a","timestamp":1704103295123.5}`, false, Click{}},
		{"before 2000", `{"event_id":"e","ad_id":"a","timestamp":"1999-12-31T23:59:59Z"}`, false, Click{}},
		{"2101", `{"event_id":"e","ad_id":"a","timestamp":"2101-01-01T00:00:00Z"}`, false, Click{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, got := Valid([]byte(tt.line))
			if got != tt.want || c != tt.c {
				t.Errorf("Valid = %+v, %v; want %+v, %v", c, got, tt.c, tt.want)
			}
		})
	}
}
