package pebblestore

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/cockroachdb/pebble"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
)

// TestOldGenerationRecord: a generation record written before top lists had
// their own range (24 bytes: from, to, seq) still loads, and serves its top
// lists over its count range, as it did.
func TestOldGenerationRecord(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const b, w = int64(1_900_000_020), 5 // a minute
	var old []byte
	for _, v := range []int64{b, b + 600, 1} {
		old = binary.BigEndian.AppendUint64(old, uint64(v))
	}
	if err := s.db.Set(genKey(1), old, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(dir, Options{}); err != nil {
		t.Fatalf("reopen with an old generation record: %v", err)
	}
	for _, r := range []struct {
		gen store.Generation
		m   int64
		ad  string
	}{{0, b + 300, "live"}, {1, b + 300, "old-gen"}, {0, b + 600, "live"}, {1, b + 600, "old-gen"}} {
		if err := s.Upsert(ctx, r.gen, []result.Record{{Top: &result.Top{WindowSize: w, Minute: r.m, Ads: []result.AdCount{{AdID: r.ad, Count: 1}}}}}); err != nil {
			t.Fatal(err)
		}
	}
	for m, want := range map[int64]string{b + 300: "old-gen", b + 600: "live"} {
		if tp, err := s.Top(ctx, w, m); err != nil || len(tp.Ads) != 1 || tp.Ads[0].AdID != want {
			t.Errorf("Top at %d = %+v, %v; want %s's list", m, tp, err, want)
		}
	}
	// A new generation's top range survives a reopen.
	g, err := s.NewGeneration(ctx, b+600, b+660, b+1200)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CommitGeneration(ctx, g); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.serving.Load().Tops().GenAt(b + 1140); got != g {
		t.Errorf("after a reopen the top list at minute 9 of the new range is served by generation %d, want %d", got, g)
	}
}
