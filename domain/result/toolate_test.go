package result

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestTooLateJSONRoundTrip(t *testing.T) {
	h1, h2 := EventDigest("e1"), EventDigest("e2")
	rec := Record{TooLate: &TooLate{AdID: "ad\"1", Minute: 1704103260, Hashes: []Digest{h1, h2}}}
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"too_late","ad_id":"ad\"1","minute":"2024-01-01T10:01:00Z","hashes":["` + h1.String() + `","` + h2.String() + `"]}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	var back Record
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, rec) {
		t.Errorf("round trip: %+v, want %+v", back.TooLate, rec.TooLate)
	}
	if back.Key() != "l/1704103260/ad\"1" {
		t.Errorf("key %q", back.Key())
	}
	other := Record{TooLate: &TooLate{AdID: "ad\"1", Minute: 1704103260, Hashes: []Digest{EventDigest("e3")}}}
	if other.Key() != rec.Key() {
		t.Error("the key depends on the hashes; it must be stable per (ad, minute)")
	}
	for _, k := range []string{(Record{Count: &Count{AdID: "ad\"1", Minute: 1704103260}}).Key(),
		(Record{Filtered: &FilteredCount{AdID: "ad\"1", Minute: 1704103260, FilterID: "x"}}).Key()} {
		if k == rec.Key() {
			t.Errorf("too-late key %q collides with an aggregate's", k)
		}
	}
}

func TestTooLateJSONRejects(t *testing.T) {
	h := `"` + EventDigest("x").String() + `"`
	many := "[" + strings.Repeat(h+",", MaxTooLateHashes) + h + "]"
	for _, bad := range []string{
		`{"type":"too_late","minute":"2024-01-01T10:01:00Z","hashes":[` + h + `]}`,
		`{"type":"too_late","ad_id":"a","minute":"2024-01-01T10:01:00Z"}`,
		`{"type":"too_late","ad_id":"a","minute":"2024-01-01T10:01:00Z","hashes":[]}`,
		`{"type":"too_late","ad_id":"a","minute":"2024-01-01T10:01:00Z","hashes":["abc"]}`,
		`{"type":"too_late","ad_id":"a","minute":"2024-01-01T10:01:30Z","hashes":[` + h + `]}`,
		`{"type":"too_late","ad_id":"a","minute":"2024-01-01T10:01:00Z","hashes":` + many + `}`,
	} {
		var r Record
		if err := json.Unmarshal([]byte(bad), &r); err == nil {
			t.Errorf("accepted %.120s", bad)
		}
	}
}

func TestSplitTooLate(t *testing.T) {
	hs := make([]Digest, 2*MaxTooLateHashes+3)
	for i := range hs {
		hs[i] = EventDigest(strings.Repeat("x", i+1))
	}
	recs := SplitTooLate("ad", 60, hs)
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3", len(recs))
	}
	var got []Digest
	for _, r := range recs {
		if n := len(r.TooLate.Hashes); n == 0 || n > MaxTooLateHashes {
			t.Errorf("a record with %d hashes", n)
		}
		if r.Key() != recs[0].Key() {
			t.Errorf("keys differ: %q %q", r.Key(), recs[0].Key())
		}
		got = append(got, r.TooLate.Hashes...)
	}
	if !reflect.DeepEqual(got, hs) {
		t.Error("the records do not hold the hashes given")
	}
	if SplitTooLate("ad", 60, nil) != nil {
		t.Error("records for no hashes")
	}
}
