package queryapi

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/adclick/adclick/domain/result"
)

func TestFastJSONMatchesEncodingJSON(t *testing.T) {
	strs := []string{"", "ad1", "a/b", `q"uote\back`, "tab\tnl\ncr\r\b\f\x00\x1f", "<script>&amp;", "ünï 日本", "\u2028\u2029", "bad\xffutf8\xc3", strings.Repeat("x", 300)}
	for _, s := range strs {
		for _, f := range []string{"", "country:" + s} {
			c := countResponse{AdID: s, FilterID: f, From: "2024-01-01T10:00:00Z", To: "2024-01-01T11:00:00Z", Count: 1<<62 + 3}
			want, _ := json.Marshal(c)
			if got := c.appendJSON(nil); string(got) != string(want) {
				t.Errorf("count %q:\n got %s\nwant %s", s, got, want)
			}
		}
		for _, ads := range [][]result.AdCount{{}, {{AdID: s, Count: 5}, {AdID: "b", Count: 0}}} {
			p := popularResponse{WindowSize: 15, Minute: "2024-01-01T10:00:00Z", Ads: ads}
			want, _ := json.Marshal(p)
			if got := p.appendJSON(nil); string(got) != string(want) {
				t.Errorf("popular %q:\n got %s\nwant %s", s, got, want)
			}
		}
	}
}

func FuzzFastJSONString(f *testing.F) {
	f.Add("ad\x00<>&\u2028\xff")
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); string(got) != string(want) {
			t.Fatalf("%q: got %s want %s", s, got, want)
		}
	})
}
