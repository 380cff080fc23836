package store

import (
	"reflect"
	"testing"
	"time"
)

// TestPlanGC: a commit older than the cutoff collects the live rows and the
// rows of generations committed before it in its ranges, and its own rows
// outside them; a younger commit, a collected one and a reservation younger
// than the abandonment limit are left alone; an old reservation is abandoned
// and all its rows collected, before anything else.
func TestPlanGC(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	old, young := now.Add(-2*time.Hour).UnixMicro(), now.Add(-time.Minute).UnixMicro()
	gens := []GenRange{
		{Gen: 1, From: 600, To: 1200, TopTo: 1500, Seq: 1, CommittedAt: old},
		{Gen: 2, From: 900, To: 1800, Seq: 2, CommittedAt: old},
		{Gen: 3, From: 0, To: 60, Seq: 3, CommittedAt: young},                // within the grace period
		{Gen: 4, From: 0, To: 60, Seq: 0, Reserved: old},                     // abandoned
		{Gen: 5, From: 0, To: 60, Seq: 0, Reserved: young},                   // a replay still running
		{Gen: 6, From: 0, To: 60, Seq: Abandoned, Reserved: old},             // abandoned by a collection cut short
		{Gen: 7, From: 0, To: 60, Seq: 4, CommittedAt: old, Collected: true}, // done
	}
	plan := PlanGC(gens, Collection{SupersededBefore: now.Add(-time.Hour), AbandonedBefore: now.Add(-time.Hour)})
	all := []Span{AllTime}
	want := GCPlan{
		Abandon: []Generation{4},
		Steps: []GCStep{
			{Mark: 4, Abandoned: true, Deletions: []Deletion{{Gen: 4, Counts: all, Tops: all}}},
			{Mark: 6, Abandoned: true, Deletions: []Deletion{{Gen: 6, Counts: all, Tops: all}}},
			{Mark: 1, Deletions: []Deletion{
				{Gen: 0, Counts: []Span{{600, 1200}}, Tops: []Span{{600, 1500}}},
				{Gen: 1, Counts: []Span{{MinMinute, 600}, {1200, MaxMinute}}, Tops: []Span{{MinMinute, 600}, {1500, MaxMinute}}},
			}},
			{Mark: 2, Deletions: []Deletion{
				{Gen: 0, Counts: []Span{{900, 1800}}, Tops: []Span{{900, 1800}}},
				{Gen: 1, Counts: []Span{{900, 1800}}, Tops: []Span{{900, 1800}}},
				{Gen: 2, Counts: []Span{{MinMinute, 900}, {1800, MaxMinute}}, Tops: []Span{{MinMinute, 900}, {1800, MaxMinute}}},
			}},
		},
	}
	if !reflect.DeepEqual(plan, want) {
		t.Errorf("PlanGC =\n%+v\nwant\n%+v", plan, want)
	}
	if p := PlanGC(gens, Collection{}); len(p.Abandon) != 0 || len(p.Steps) != 1 || p.Steps[0].Mark != 6 {
		t.Errorf("PlanGC without cutoffs = %+v; want only the collection of the generation already abandoned", p)
	}
}

func TestExpiryDeletions(t *testing.T) {
	got := ExpiryDeletions([]Generation{0, 3}, time.Unix(2*86400+5*3600, 0))
	want := []Deletion{
		{Gen: 0, Counts: []Span{{MinMinute, 2 * 86400}}, Tops: []Span{{MinMinute, 2 * 86400}}},
		{Gen: 3, Counts: []Span{{MinMinute, 2 * 86400}}, Tops: []Span{{MinMinute, 2 * 86400}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ExpiryDeletions = %+v, want %+v", got, want)
	}
	if FloorHour(-1) != -3600 || FloorDay(86399) != 0 {
		t.Error("FloorHour/FloorDay round toward zero for negative times or beyond the day")
	}
}
