package result

import (
	"reflect"
	"testing"
)

// generalDecode is UnmarshalJSON's general way, without the fast path.
func generalDecode(b []byte) (Record, error) {
	var r Record
	// Round through UnmarshalJSON with a form decodeCounts refuses (a
	// leading space), so the same general code decides.
	err := r.UnmarshalJSON(append([]byte(" "), b...))
	return r, err
}

// FuzzDecodeCounts: wherever the fast path accepts, the general parse
// accepts too and gives the same record.
func FuzzDecodeCounts(f *testing.F) {
	d := DigestFromBytes([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	for _, r := range []Record{
		{Count: &Count{AdID: "ad-1", Minute: 1704103260, Count: 352, Digest: d}},
		{Count: &Count{AdID: "ad-1", Minute: 1704103260, Count: 0}},
		{Filtered: &FilteredCount{AdID: "ad1", FilterID: "country:US", Minute: 60, Count: 210, Digest: d}},
		{Filtered: &FilteredCount{AdID: "a\"d", FilterID: "device:ios", Minute: -60, Count: 1}},
	} {
		f.Add(r.AppendJSON(nil))
		f.Add(r.AppendTopicJSON(nil))
	}
	f.Add([]byte(`{"type":"count","ad_id":"a","minute":"2024-01-01T10:01:00Z","count":-0}`))
	f.Add([]byte(`{"type":"count","ad_id":"a","minute":"2024-01-01T10:01:00+01:00","count":01}`))
	f.Add([]byte(`{"type":"count","ad_id":"a","minute":"2024-01-01T10:01:00Z","count":1,"digest":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := decodeCounts(b)
		if !ok {
			return
		}
		general, err := generalDecode(b)
		if err != nil {
			t.Fatalf("%q: fast path accepted %+v, general parse failed: %v", b, fast, err)
		}
		if !reflect.DeepEqual(fast, general) {
			t.Fatalf("%q: fast %+v %+v, general %+v %+v", b, fast.Count, fast.Filtered, general.Count, general.Filtered)
		}
	})
}

// TestDecodeCountsTakesWhatAppendJSONWrites: the records the job writes, in
// either digest form, do take the fast path (else it would be dead code that the fuzz test cannot
// tell from a working one).
func TestDecodeCountsTakesWhatAppendJSONWrites(t *testing.T) {
	d := DigestFromBytes([]byte{15: 1})
	for _, r := range []Record{
		{Count: &Count{AdID: "ad-000001", Minute: 1704103260, Count: 7362, Digest: d}},
		{Count: &Count{AdID: "ad-000001", Minute: 1704103260, Count: 1}},
		{Filtered: &FilteredCount{AdID: "ad-000003", FilterID: "country:AU", Minute: 1704103200, Count: 137, Digest: d}},
	} {
		for _, b := range [][]byte{r.AppendJSON(nil), r.AppendTopicJSON(nil)} {
			got, ok := decodeCounts(b)
			if !ok || !reflect.DeepEqual(got, r) {
				t.Errorf("%s: fast path gave %+v (ok %v)", b, got, ok)
			}
		}
	}
	for _, s := range []string{
		`{"type":"count","ad_id":"ad\u0031","minute":"2024-01-01T10:01:00Z","count":1}`, // an escape
		`{"type":"count","ad_id":"a","minute":"2024-01-01T10:01:30Z","count":1}`,        // not a minute start
		`{"type":"count","ad_id":"a","minute":"2024-01-01T10:01:00Z","count":1} `,       // trailing space
		`{"type":"count","ad_id":"","minute":"2024-01-01T10:01:00Z","count":1}`,         // no ad
	} {
		if _, ok := decodeCounts([]byte(s)); ok {
			t.Errorf("%s: fast path accepted it", s)
		}
	}
}
