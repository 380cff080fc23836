package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
)

func testPing(t *testing.T, s store.Store, _ *space) {
	must(t, s.Ping(ctxT(t)))
	must(t, s.Sync(ctxT(t)))
}

// testContextEnds: a call whose context has ended fails as unavailable, and
// a deadline stops even a Count over centuries (one seek or query per hour or
// day of the range: minutes of work if nothing checked the context).
func testContextEnds(t *testing.T, s store.Store, sp *space) {
	b := sp.base()
	w := sp.win()
	must(t, s.Upsert(ctxT(t), 0, []result.Record{cnt("ctx-ad", b, 1), top(w, b, result.AdCount{AdID: "ctx-ad", Count: 1})}))
	shards, err := s.RawShards(ctxT(t), sec(b), sec(b+3600), 1)
	must(t, err)

	ended, cancel := context.WithCancel(context.Background())
	cancel()
	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Count", func(ctx context.Context) error { _, err := s.Count(ctx, "ctx-ad", "", b, b+60); return err }},
		{"Top", func(ctx context.Context) error { _, err := s.Top(ctx, w, b); return err }},
		{"LatestTopMinute", func(ctx context.Context) error { _, err := s.LatestTopMinute(ctx, w); return err }},
		{"ScanCounts", func(ctx context.Context) error {
			return s.ScanCounts(ctx, b, b+60, func(result.Record) error { return nil })
		}},
		{"ReadRaw", func(ctx context.Context) error {
			return s.ReadRaw(ctx, shards[0], func(click.Click) error { return nil })
		}},
		{"Upsert", func(ctx context.Context) error { return s.Upsert(ctx, 0, []result.Record{cnt("ctx-ad", b, 2)}) }},
		{"Merge", func(ctx context.Context) error { return s.Merge(ctx, 0, []result.Record{cnt("ctx-ad", b, 2)}) }},
		{"WriteRaw", func(ctx context.Context) error {
			return s.WriteRaw(ctx, []click.Click{{AdID: "ctx-ad", EventID: "e1", Time: b * 1000, UserID: "u", IP: "10.0.0.1", Country: "US", Device: "mobile", AdFormat: "banner"}})
		}},
		{"NewGeneration", func(ctx context.Context) error { _, err := s.NewGeneration(ctx, b, b+60, b+60); return err }},
		{"Ping", func(ctx context.Context) error { return s.Ping(ctx) }},
		{"Sync", func(ctx context.Context) error { return s.Sync(ctx) }},
	}
	for _, c := range calls {
		err := c.call(ended)
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s with an ended context: error %v, want ErrUnavailable", c.name, err)
		}
	}
	wantCount(t, s, "ctx-ad", "", b, b+60, 1) // nothing was written

	const budget = 200 * time.Millisecond
	ctx, cancel2 := context.WithTimeout(ctxT(t), budget)
	defer cancel2()
	start := time.Now()
	_, err = s.Count(ctx, "ctx-ad", "", 0, 253402300740) // 1970 to 9999
	took := time.Since(start)
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Count over eight millennia with a %v deadline: error %v, want ErrUnavailable", budget, err)
	}
	if took > budget+2*time.Second {
		t.Errorf("Count over eight millennia took %v with a %v deadline", took, budget)
	}
}
