package result

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestDigestArithmetic(t *testing.T) {
	a := Digest{Hi: 1, Lo: ^uint64(0), Known: true}
	b := Digest{Hi: ^uint64(0), Lo: 2, Known: true}
	sum := a.Add(b) // carries out of Lo into Hi, and out of Hi (mod 2^128)
	if want := (Digest{Hi: 1, Lo: 1, Known: true}); sum != want {
		t.Fatalf("a+b = %+v, want %+v", sum, want)
	}
	if got := sum.Sub(b); got != a {
		t.Fatalf("(a+b)-b = %+v, want %+v", got, a)
	}
	if a.Add(b) != b.Add(a) {
		t.Fatal("addition is not commutative")
	}
	if u := a.Add(Digest{}); u != (Digest{}) {
		t.Fatalf("known + unknown = %+v, want the unknown digest", u)
	}
	if u := (Digest{}).Sub(a); u != (Digest{}) {
		t.Fatalf("unknown - known = %+v, want the unknown digest", u)
	}
}

func TestDigestForms(t *testing.T) {
	d := Digest{Hi: 0x0123456789abcdef, Lo: 0xfedcba9876543210, Known: true}
	if s := d.String(); s != "0123456789abcdeffedcba9876543210" {
		t.Fatalf("hex %s", s)
	}
	back, err := ParseDigest(d.String())
	if err != nil || back != d {
		t.Fatalf("parse: %+v %v", back, err)
	}
	if got := DigestFromBytes(d.AppendBytes(nil)); got != d {
		t.Fatalf("bytes: %+v", got)
	}
	// The compact form (base64url, the results topic's): the alphabet's
	// 62nd and 63rd characters are - and _, never + and /.
	if s := string(d.AppendBase64(nil)); s != "ASNFZ4mrze_-3LqYdlQyEA" {
		t.Fatalf("compact %s", s)
	}
	back, err = ParseDigest("ASNFZ4mrze_-3LqYdlQyEA")
	if err != nil || back != d {
		t.Fatalf("parse compact: %+v %v", back, err)
	}
	for _, bad := range []string{"", "0123", "0123456789abcdeffedcba987654321g", "0123456789abcdeffedcba98765432100",
		"ASNFZ4mrze/+3LqYdlQyEA",   // the standard alphabet
		"ASNFZ4mrze_-3LqYdlQyEB",   // non-zero unused bits: a second form of one digest
		"ASNFZ4mrze_-3LqYdlQyEA==", // padded
		"ASNFZ4mrze_-3LqYdlQy\r\n", // newlines, which the base64 decoder skips (15 bytes)
	} {
		if _, err := ParseDigest(bad); err == nil {
			t.Errorf("parsed %q", bad)
		}
	}
	if (Digest{}).String() != "unknown" {
		t.Error("unknown digest has a hex form")
	}
}

func TestRecordJSONDigest(t *testing.T) {
	d := Digest{Hi: 0xff, Lo: 1, Known: true}
	recs := []Record{
		{Count: &Count{AdID: "a", Minute: 60, Count: 3, Digest: d}},
		{Filtered: &FilteredCount{AdID: "a", FilterID: "country:US", Minute: 60, Count: 2, Digest: d}},
	}
	want := []string{
		`{"type":"count","ad_id":"a","minute":"1970-01-01T00:01:00Z","count":3,"digest":"00000000000000ff0000000000000001"}`,
		`{"type":"filtered_count","ad_id":"a","filter_id":"country:US","minute":"1970-01-01T00:01:00Z","count":2,"digest":"00000000000000ff0000000000000001"}`,
	}
	// The results topic's form: the same with the compact digest.
	wantTopic := []string{
		`{"type":"count","ad_id":"a","minute":"1970-01-01T00:01:00Z","count":3,"digest":"AAAAAAAAAP8AAAAAAAAAAQ"}`,
		`{"type":"filtered_count","ad_id":"a","filter_id":"country:US","minute":"1970-01-01T00:01:00Z","count":2,"digest":"AAAAAAAAAP8AAAAAAAAAAQ"}`,
	}
	for i, r := range recs {
		for _, b := range [][]byte{r.AppendJSON(nil), r.AppendTopicJSON(nil)} {
			if w := [2]string{want[i], wantTopic[i]}; string(b) != w[0] && string(b) != w[1] {
				t.Fatalf("got  %s\nwant %s or %s", b, w[0], w[1])
			}
			// Both ways of parsing: the fast path and the general one
			// (which a leading space takes).
			for _, in := range [][]byte{b, append([]byte(" "), b...)} {
				var back Record
				if err := back.UnmarshalJSON(in); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(back, r) {
					t.Fatalf("%s parsed as %+v %+v", in, back.Count, back.Filtered)
				}
			}
		}
		if string(r.AppendJSON(nil)) == string(r.AppendTopicJSON(nil)) {
			t.Fatalf("AppendTopicJSON wrote the hex form: %s", r.AppendTopicJSON(nil))
		}
	}
	// A record without a digest (written before digests) parses as unknown.
	var old Record
	if err := json.Unmarshal([]byte(`{"type":"count","ad_id":"a","minute":"1970-01-01T00:01:00Z","count":3}`), &old); err != nil {
		t.Fatal(err)
	}
	if old.Count.Digest.Known {
		t.Fatal("missing digest parsed as known")
	}
	if err := json.Unmarshal([]byte(`{"type":"count","ad_id":"a","minute":"1970-01-01T00:01:00Z","count":3,"digest":"xyz"}`), &old); err == nil {
		t.Fatal("bad digest accepted")
	}
}
