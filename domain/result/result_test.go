package result

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestRecordJSONRoundTrip(t *testing.T) {
	tests := []struct {
		rec  Record
		want string
	}{
		{Record{Count: &Count{AdID: "ad\"1", Minute: 1704103260, Count: 352}},
			`{"type":"count","ad_id":"ad\"1","minute":"2024-01-01T10:01:00Z","count":352}`},
		{Record{Filtered: &FilteredCount{AdID: "ad1", FilterID: "country:US", Minute: 1704103260, Count: 210}},
			`{"type":"filtered_count","ad_id":"ad1","filter_id":"country:US","minute":"2024-01-01T10:01:00Z","count":210}`},
		{Record{Top: &Top{WindowSize: 5, Minute: 1704103260, Ads: []AdCount{{"ad3", 12}, {"日本", 9}}}},
			`{"type":"top","window_size":5,"minute":"2024-01-01T10:01:00Z","ads":[{"ad_id":"ad3","count":12},{"ad_id":"日本","count":9}]}`},
		{Record{Top: &Top{WindowSize: 1, Minute: 0}},
			`{"type":"top","window_size":1,"minute":"1970-01-01T00:00:00Z","ads":[]}`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.rec)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tt.want {
			t.Errorf("got  %s\nwant %s", b, tt.want)
		}
		var back Record
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if back.Key() != tt.rec.Key() || !reflect.DeepEqual(back.AppendJSON(nil), tt.rec.AppendJSON(nil)) {
			t.Errorf("round trip of %s: %s", b, back.AppendJSON(nil))
		}
	}
	if _, err := json.Marshal(Record{}); err == nil {
		t.Error("empty record marshalled")
	}
	for _, bad := range []string{`{"type":"count","minute":"2024-01-01T10:01:00Z","count":1}`, `{"type":"count","ad_id":"a","minute":"2024-01-01T10:01:30Z","count":1}`,
		`{"type":"nope","minute":"2024-01-01T10:01:00Z"}`, `{"type":"top","window_size":0,"minute":"2024-01-01T10:01:00Z"}`, `[]`} {
		var r Record
		if err := json.Unmarshal([]byte(bad), &r); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}
