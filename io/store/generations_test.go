package store

import (
	"reflect"
	"testing"
)

func TestServing(t *testing.T) {
	s := NewServing([]GenRange{
		{Gen: 1, From: 60, To: 600, Seq: 1},
		{Gen: 2, From: 300, To: 420, Seq: 3}, // committed later: wins over 1
		{Gen: 3, From: 0, To: 6000, Seq: 0},  // reserved only: ignored
		{Gen: 4, From: 540, To: 900, Seq: 2}, // committed before 2 but after 1
	})
	got := s.Segments(0, 1200)
	want := []Segment{
		{0, 60, 0}, {60, 300, 1}, {300, 420, 2}, {420, 540, 1}, {540, 900, 4}, {900, 1200, 0},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Segments = %v\nwant %v", got, want)
	}
	if got := s.Segments(360, 480); !reflect.DeepEqual(got, []Segment{{360, 420, 2}, {420, 480, 1}}) {
		t.Errorf("inner Segments = %v", got)
	}
	if got := s.Segments(60, 60); got != nil {
		t.Errorf("empty Segments = %v", got)
	}
	for m, g := range map[int64]Generation{0: 0, 60: 1, 299: 1, 300: 2, 419: 2, 420: 1, 540: 4, 899: 4, 900: 0, -60: 0} {
		if got := s.GenAt(m); got != g {
			t.Errorf("GenAt(%d) = %d, want %d", m, got, g)
		}
	}
	if got := s.Generations(); !reflect.DeepEqual(got, []Generation{0, 1, 2, 4}) {
		t.Errorf("Generations = %v", got)
	}
	if got := s.Owned(1); !reflect.DeepEqual(got, []Segment{{60, 300, 1}, {420, 540, 1}}) {
		t.Errorf("Owned(1) = %v", got)
	}
	// A commit covering everything replaces every earlier one.
	s = NewServing([]GenRange{{Gen: 1, From: 60, To: 600, Seq: 1}, {Gen: 5, From: 0, To: 6000, Seq: 9}})
	if got := s.Segments(0, 6000); !reflect.DeepEqual(got, []Segment{{0, 6000, 5}}) {
		t.Errorf("covering commit: %v", got)
	}
}
