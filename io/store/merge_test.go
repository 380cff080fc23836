package store

import (
	"reflect"
	"testing"

	"github.com/adclick/adclick/domain/result"
)

func ac(pairs ...any) []result.AdCount {
	var out []result.AdCount
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, result.AdCount{AdID: pairs[i].(string), Count: int64(pairs[i+1].(int))})
	}
	return out
}

func TestMergeTop(t *testing.T) {
	tests := []struct {
		name       string
		stored, in []result.AdCount
		want       []result.AdCount
	}{
		{"nothing stored", nil, ac("a", 3, "b", 1), ac("a", 3, "b", 1)},
		{"a newer pane wins", ac("a", 3, "b", 1), ac("a", 5, "c", 4), ac("a", 5, "c", 4)},
		{"a partial recomputation never lowers a final list", ac("a", 9, "b", 7), ac("a", 2, "c", 1), ac("a", 9, "b", 7)},
		{"ties by ad_id, old entry out", ac("b", 4, "c", 2), ac("a", 4, "b", 4), ac("a", 4, "b", 4)},
		{"list grows as ads appear", ac("a", 1), ac("a", 2, "b", 1), ac("a", 2, "b", 1)},
		{"both empty", nil, nil, ac()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := MergeTop(tc.stored, tc.in)
			if len(got) == 0 && len(tc.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("MergeTop(%v, %v) = %v, want %v", tc.stored, tc.in, got, tc.want)
			}
		})
	}
}
