package dbwriter

import (
	"reflect"
	"testing"

	"github.com/adclick/adclick/domain/result"
)

func TestMergeRecords(t *testing.T) {
	c := func(n int64) result.Record {
		return result.Record{Count: &result.Count{AdID: "a", Minute: 60, Count: n}}
	}
	f := func(n int64) result.Record {
		return result.Record{Filtered: &result.FilteredCount{AdID: "a", FilterID: "country:US", Minute: 60, Count: n}}
	}
	tp := func(ads ...result.AdCount) result.Record {
		return result.Record{Top: &result.Top{WindowSize: 5, Minute: 60, Ads: ads}}
	}
	tests := []struct {
		name       string
		first, thn result.Record
		want       result.Record
	}{
		{"count grows", c(3), c(5), c(5)},
		{"a recomputed lower count after a restart loses", c(5), c(2), c(5)},
		{"filtered likewise", f(9), f(1), f(9)},
		{"top lists merge per ad", tp(result.AdCount{AdID: "a", Count: 9}, result.AdCount{AdID: "b", Count: 7}),
			tp(result.AdCount{AdID: "a", Count: 2}, result.AdCount{AdID: "c", Count: 1}),
			tp(result.AdCount{AdID: "a", Count: 9}, result.AdCount{AdID: "b", Count: 7})},
	}
	for _, tc := range tests {
		if got := mergeRecords(tc.first, tc.thn); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: mergeRecords = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
