package store

import (
	"errors"
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

// TestServingTops: a generation's top lists may reach past its counts; the
// two maps are built from the same commits, in the same order.
func TestServingTops(t *testing.T) {
	s := NewServing([]GenRange{
		{Gen: 1, From: 60, To: 300, TopTo: 600, Seq: 1},
		{Gen: 2, From: 420, To: 480, Seq: 2},             // no TopTo (an older record): tops end at To
		{Gen: 3, From: 0, To: 120, TopTo: 60, Seq: 3},    // TopTo below To counts as To
		{Gen: 4, From: 0, To: 6000, TopTo: 9000, Seq: 0}, // reserved only: ignored
	})
	if got, want := s.Segments(0, 900), []Segment{{0, 120, 3}, {120, 300, 1}, {300, 420, 0}, {420, 480, 2}, {480, 900, 0}}; !reflect.DeepEqual(got, want) {
		t.Errorf("count Segments = %v\nwant %v", got, want)
	}
	tops := s.Tops()
	if got, want := tops.Segments(0, 900), []Segment{{0, 120, 3}, {120, 420, 1}, {420, 480, 2}, {480, 600, 1}, {600, 900, 0}}; !reflect.DeepEqual(got, want) {
		t.Errorf("top Segments = %v\nwant %v", got, want)
	}
	if got := tops.Owned(1); !reflect.DeepEqual(got, []Segment{{120, 420, 1}, {480, 600, 1}}) {
		t.Errorf("top Owned(1) = %v", got)
	}
	if tops.Tops() != tops {
		t.Error("the top lists' map has another top lists' map")
	}
	if got, want := s.GenAt(360), LiveGeneration; got != want {
		t.Errorf("count GenAt(360) = %d, want %d", got, want)
	}
	if got, want := tops.GenAt(360), Generation(1); got != want {
		t.Errorf("top GenAt(360) = %d, want %d", got, want)
	}
}

func TestCheckGenRange(t *testing.T) {
	for _, tc := range []struct {
		from, to, topTo int64
		ok              bool
	}{{0, 60, 60, true}, {0, 60, 3600, true}, {0, 0, 60, false}, {60, 0, 60, false}, {0, 60, 0, false}, {0, 60, 90, false}, {1, 60, 60, false}} {
		if err := CheckGenRange(tc.from, tc.to, tc.topTo); (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("CheckGenRange(%d, %d, %d) = %v, want ok %v", tc.from, tc.to, tc.topTo, err, tc.ok)
		}
	}
}
