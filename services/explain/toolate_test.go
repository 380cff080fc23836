package explain_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/services/explain"
)

// TestStoreTooLateGuard: the records of the store's live generation
// explain a live minute when applying them gives the stored count and
// digest. A record naming a click the stored count did count (one job
// incarnation judged it too late, another counted it) is not taken: the
// minute is then explained as without records — by digest when one or two
// clicks are missing, else unexplained, never a match.
func TestStoreTooLateGuard(t *testing.T) {
	for _, tc := range []struct {
		name             string
		late, wrong      int // clicks left out of the stored count; recorded ones it counted
		wantVerdict      explain.Verdict
		wantReason       string
		wantTooLateFound int
	}{
		{"recorded", 5, 0, explain.Match, explain.ReasonTooLateRecorded, 5},
		{"one counted, two missing: by digest", 2, 1, explain.Match, explain.ReasonTooLateInferred, 2},
		{"one counted, five missing: unexplained", 5, 1, explain.Mismatch, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t)
			ctx := context.Background()
			var raw []click.Click
			var streamed []string
			var rec []result.Digest
			for i := range 20 {
				id := fmt.Sprintf("e%02d", i)
				raw = append(raw, ck(id, "ad", int64(i), "US"))
				switch {
				case i < tc.late:
					rec = append(rec, result.EventDigest(id))
				case i < tc.late+tc.wrong:
					rec = append(rec, result.EventDigest(id))
					streamed = append(streamed, id)
				default:
					streamed = append(streamed, id)
				}
			}
			if err := s.WriteRaw(ctx, raw); err != nil {
				t.Fatal(err)
			}
			cnt := result.Record{Count: &result.Count{AdID: "ad", Minute: m0, Count: int64(len(streamed)), Digest: digestOf(streamed...)}}
			if err := s.Merge(ctx, store.LiveGeneration, []result.Record{cnt}); err != nil {
				t.Fatal(err)
			}
			if err := s.AddTooLate(ctx, store.LiveGeneration, []result.TooLate{{AdID: "ad", Minute: m0, Hashes: rec}}); err != nil {
				t.Fatal(err)
			}
			// Another generation's records are not the streaming job's.
			if err := s.AddTooLate(ctx, 3, []result.TooLate{{AdID: "ad", Minute: m0, Hashes: []result.Digest{result.EventDigest("e19")}}}); err != nil {
				t.Fatal(err)
			}
			src := explain.StoreTooLate(s)
			if src == nil {
				t.Fatal("the Pebble store is no TooLateSource")
			}
			e, err := explain.New(ctx, explain.Options{Store: s, AdID: "ad", From: m0, To: m0 + 60, TooLate: src})
			if err != nil {
				t.Fatal(err)
			}
			var m *explain.Minute
			tot, err := e.Run(ctx, func(x *explain.Minute) error { m = x; return nil })
			if err != nil {
				t.Fatal(err)
			}
			if tot.Verdict != tc.wantVerdict || tot.TooLate != tc.wantTooLateFound {
				t.Fatalf("total %+v; want verdict %s with %d too late", tot, tc.wantVerdict, tc.wantTooLateFound)
			}
			if tc.wantVerdict != explain.Match {
				if m.Summary.Verdict != explain.Unexplained {
					t.Errorf("minute verdict %s, want unexplained", m.Summary.Verdict)
				}
				return
			}
			if got := counted(m); !slices.Equal(got, streamed) {
				t.Errorf("counted %v, want %v", got, streamed)
			}
			for _, r := range m.Rows[len(streamed):] {
				if r.Reason != tc.wantReason {
					t.Errorf("row %s: reason %q, want %q", r.Click.EventID, r.Reason, tc.wantReason)
				}
			}
		})
	}
	if explain.StoreTooLate(struct{}{}) != nil {
		t.Error("a TooLateSource from a store that keeps none")
	}
}
