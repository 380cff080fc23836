package explain_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/io/store/pebblestore"
	"github.com/adclick/adclick/services/explain"
)

const m0 = int64(1_900_000_020) // a whole minute

func openStore(t *testing.T) *pebblestore.Store {
	t.Helper()
	s, err := pebblestore.Open(t.TempDir(), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ck(id, ad string, sec int64, country string) click.Click {
	return click.Click{EventID: id, AdID: ad, Time: (m0+sec)*1000 + 7, Country: country, Device: "mobile"}
}

// digestOf is the digest of a set of event ids, from the ids alone.
func digestOf(ids ...string) result.Digest {
	d := result.Digest{Known: true}
	for _, id := range ids {
		d = d.Add(result.EventDigest(id))
	}
	return d
}

func run(t *testing.T, s *pebblestore.Store, filterID string, from, to int64) ([]*explain.Minute, explain.Total) {
	t.Helper()
	e, err := explain.New(context.Background(), explain.Options{Store: s, AdID: "ad", FilterID: filterID, From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	var ms []*explain.Minute
	tot, err := e.Run(context.Background(), func(m *explain.Minute) error { ms = append(ms, m); return nil })
	if err != nil {
		t.Fatal(err)
	}
	return ms, tot
}

func counted(m *explain.Minute) []string {
	var ids []string
	for _, r := range m.Rows {
		if r.Status == explain.Counted {
			ids = append(ids, r.Click.EventID)
		}
	}
	slices.Sort(ids)
	return ids
}

// TestDedupAndFilters: duplicates with disagreeing attributes count once,
// the smallest attributes decide the filter, another ad is not listed, and a
// replay generation that stored exactly that set matches.
func TestDedupAndFilters(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	raw := []click.Click{
		ck("a", "ad", 1, "US"), ck("a", "ad", 2, "US"), // a re-delivery one second later
		ck("b", "ad", 3, "US"), ck("b", "ad", 4, "DE"), // disagreeing copies: DE < US wins
		ck("c", "ad", 5, ""), ck("x", "other", 6, "US"),
	}
	if err := s.WriteRaw(ctx, raw); err != nil {
		t.Fatal(err)
	}
	g, err := s.NewGeneration(ctx, m0, m0+60, m0+60)
	if err != nil {
		t.Fatal(err)
	}
	recs := []result.Record{
		{Count: &result.Count{AdID: "ad", Minute: m0, Count: 3, Digest: digestOf("a", "b", "c")}},
		{Filtered: &result.FilteredCount{AdID: "ad", FilterID: "country:US", Minute: m0, Count: 1, Digest: digestOf("a")}},
	}
	if err := s.Upsert(ctx, g, recs); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitGeneration(ctx, g); err != nil {
		t.Fatal(err)
	}
	ms, tot := run(t, s, "", m0, m0+60)
	if got := counted(ms[0]); !slices.Equal(got, []string{"a", "b", "c"}) || tot.Verdict != explain.Match || tot.Count != 3 {
		t.Fatalf("unfiltered: counted %v, total %+v", got, tot)
	}
	if n := len(ms[0].Rows); n != 5 {
		t.Errorf("unfiltered: %d rows, want 5 (3 counted, 2 duplicates)", n)
	}
	ms, tot = run(t, s, "country:US", m0, m0+60)
	if got := counted(ms[0]); !slices.Equal(got, []string{"a"}) || tot.Verdict != explain.Match {
		t.Fatalf("country:US: counted %v, total %+v", got, tot)
	}
	var reasons []string
	for _, r := range ms[0].Rows[1:] {
		reasons = append(reasons, r.Reason)
	}
	want := []string{"duplicate of a", "duplicate of b (the copy that decides the filters is outside country:US)"}
	if !slices.Equal(reasons, want) {
		t.Errorf("country:US reasons %q, want %q", reasons, want)
	}
}

// TestReplayMismatch: a replay generation whose stored set swaps one click
// for another (same count) is a MISMATCH naming the minute.
func TestReplayMismatch(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	if err := s.WriteRaw(ctx, []click.Click{ck("a", "ad", 1, "US"), ck("b", "ad", 61, "US")}); err != nil {
		t.Fatal(err)
	}
	g, _ := s.NewGeneration(ctx, m0, m0+120, m0+120)
	recs := []result.Record{
		{Count: &result.Count{AdID: "ad", Minute: m0, Count: 1, Digest: digestOf("a")}},
		{Count: &result.Count{AdID: "ad", Minute: m0 + 60, Count: 1, Digest: digestOf("z")}},
	}
	if err := errors.Join(s.Upsert(ctx, g, recs), s.CommitGeneration(ctx, g)); err != nil {
		t.Fatal(err)
	}
	_, tot := run(t, s, "", m0, m0+120)
	if tot.Verdict != explain.Mismatch || !slices.Equal(tot.Mismatched, []int64{m0 + 60}) || len(tot.Unexplained) != 0 {
		t.Errorf("total %+v; want a MISMATCH of minute %d only", tot, m0+60)
	}
}

// TestLiveTooLate: in live minutes the clicks the stream left out are found
// with the digests when there are one or two; three are unexplained.
func TestLiveTooLate(t *testing.T) {
	for _, late := range []int{1, 2, 3} {
		t.Run(fmt.Sprint(late), func(t *testing.T) {
			s := openStore(t)
			ctx := context.Background()
			var raw []click.Click
			var streamed []string
			for i := range 20 {
				id := fmt.Sprintf("e%02d", i)
				raw = append(raw, ck(id, "ad", int64(i), "US"))
				if i%5 != 0 || i/5 >= late {
					streamed = append(streamed, id)
				}
			}
			if err := s.WriteRaw(ctx, raw); err != nil {
				t.Fatal(err)
			}
			rec := result.Record{Count: &result.Count{AdID: "ad", Minute: m0, Count: int64(len(streamed)), Digest: digestOf(streamed...)}}
			if err := s.Merge(ctx, store.LiveGeneration, []result.Record{rec}); err != nil {
				t.Fatal(err)
			}
			ms, tot := run(t, s, "", m0, m0+60)
			if late > 2 {
				if tot.Verdict != explain.Mismatch || !slices.Equal(tot.Unexplained, []int64{m0}) {
					t.Fatalf("%d too late: total %+v, want the minute unexplained", late, tot)
				}
				return
			}
			if got := counted(ms[0]); !slices.Equal(got, streamed) || tot.Verdict != explain.Match || tot.TooLate != late {
				t.Fatalf("counted %v (want %v), total %+v", got, streamed, tot)
			}
			for _, r := range ms[0].Rows[len(streamed):] {
				if r.Reason != explain.ReasonTooLateInferred {
					t.Errorf("row %s: reason %q", r.Click.EventID, r.Reason)
				}
			}
		})
	}
}

func TestInvalid(t *testing.T) {
	s := openStore(t)
	for _, o := range []explain.Options{
		{AdID: "", From: m0, To: m0 + 60},
		{AdID: "ad", From: m0 + 1, To: m0 + 60},
		{AdID: "ad", From: m0 + 60, To: m0 + 60},
		{AdID: "ad", FilterID: "colour:red", From: m0, To: m0 + 60},
		{AdID: "ad", FilterID: "country:", From: m0, To: m0 + 60},
	} {
		o.Store = s
		if _, err := explain.New(context.Background(), o); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("New(%+v) = %v; want ErrInvalid", o, err)
		}
	}
}

// recorded is a TooLateSource holding fixed hashes for one minute.
type recorded map[int64][]result.Digest

func (r recorded) TooLate(_ context.Context, _ string, m int64) ([]result.Digest, error) {
	return r[m], nil
}

// TestRecordedTooLate: where a TooLateSource records the stream's decisions
// (a store.TooLateStore, StoreTooLate), they explain a live minute whatever
// the number of too-late clicks; the digests are not needed.
func TestRecordedTooLate(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	var raw []click.Click
	var late []result.Digest
	for i := range 10 {
		id := fmt.Sprintf("e%d", i)
		raw = append(raw, ck(id, "ad", int64(i), "US"))
		if i < 4 {
			late = append(late, result.EventDigest(id))
		}
	}
	if err := s.WriteRaw(ctx, raw); err != nil {
		t.Fatal(err)
	}
	rec := result.Record{Count: &result.Count{AdID: "ad", Minute: m0, Count: 6, Digest: digestOf("e4", "e5", "e6", "e7", "e8", "e9")}}
	if err := s.Merge(ctx, store.LiveGeneration, []result.Record{rec}); err != nil {
		t.Fatal(err)
	}
	e, err := explain.New(ctx, explain.Options{Store: s, AdID: "ad", From: m0, To: m0 + 60, TooLate: recorded{m0: late}})
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	tot, err := e.Run(ctx, func(m *explain.Minute) error {
		for _, r := range m.Rows[6:] {
			reasons = append(reasons, r.Reason)
		}
		return nil
	})
	if err != nil || tot.Verdict != explain.Match || tot.TooLate != 4 || len(reasons) != 4 || reasons[0] != explain.ReasonTooLateRecorded {
		t.Fatalf("total %+v, reasons %q, %v; want a match with 4 recorded too-late clicks", tot, reasons, err)
	}
}

// TestCSVFormulaGuard: a click value that a spreadsheet would run as a
// formula is exported as text in CSV, and as it is in JSON lines.
func TestCSVFormulaGuard(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	c := ck("=HYPERLINK(\"x\")", "ad", 1, "+US")
	if err := s.WriteRaw(ctx, []click.Click{c}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ format, want string }{
		{"csv", `,"'=HYPERLINK(""x"")",`},
		{"jsonl", `"event_id":"=HYPERLINK(\"x\")"`},
	} {
		var b strings.Builder
		e, err := explain.NewExporter(&b, tc.format)
		if err != nil {
			t.Fatal(err)
		}
		ex, err := explain.New(ctx, explain.Options{Store: s, AdID: "ad", From: m0, To: m0 + 60})
		if err != nil {
			t.Fatal(err)
		}
		tot, err := ex.Run(ctx, e.Minute)
		if err == nil {
			err = e.Total(&tot)
		}
		if err != nil || !strings.Contains(b.String(), tc.want) {
			t.Errorf("%s export (%v):\n%s\nwant it to contain %s", tc.format, err, b.String(), tc.want)
		}
		if tc.format == "csv" && !strings.Contains(b.String(), ",'+US,") {
			t.Errorf("csv country not guarded:\n%s", b.String())
		}
	}
}
