package pebblestore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/io/store"
)

// TestRawExpiryFreesDisk: raw retention frees the disk space of the hours it
// deletes at once (the compaction after the range tombstone), not whenever
// Pebble would compact them; the usage estimates follow.
func TestRawExpiryFreesDisk(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	const hours, perHour = 4, 25_000
	for h := 0; h < hours; h++ {
		batch := make([]click.Click, 0, perHour)
		for i := 0; i < perHour; i++ {
			batch = append(batch, click.Click{EventID: fmt.Sprintf("ev-%d-%07d", h, i), AdID: fmt.Sprintf("ad-%04d", i%500),
				Time:   start.Add(time.Duration(h)*time.Hour + time.Duration(i)*time.Hour/perHour).UnixMilli(),
				UserID: fmt.Sprintf("user-%06d", i*7919%100000), IP: fmt.Sprintf("10.%d.%d.%d", i%256, i/256%256, h), Country: "US", Device: "ios", AdFormat: "banner"})
		}
		if err := s.WriteRaw(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	before := rawUsage(t, s)
	if _, err := s.Collect(ctx, store.Collection{RawBefore: start.Add(2*time.Hour + 30*time.Minute)}); err != nil {
		t.Fatal(err)
	}
	after := rawUsage(t, s)
	t.Logf("raw before: %d rows, %d bytes; after expiring 2 of 4 hours: %d rows, %d bytes", before.Rows, before.Bytes, after.Rows, after.Bytes)
	if after.Bytes > before.Bytes*6/10 || after.Bytes < before.Bytes*4/10 {
		t.Errorf("raw bytes went from %d to %d; want about half", before.Bytes, after.Bytes)
	}
	if after.Rows < perHour*2*9/10 || after.Rows > perHour*2*11/10 || before.Rows < perHour*4*9/10 {
		t.Errorf("raw rows estimated %d before and %d after; want about %d and %d", before.Rows, after.Rows, perHour*4, perHour*2)
	}
	u, err := s.Usage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := start.Add(2 * time.Hour); !u.OldestRaw.Equal(want) {
		t.Errorf("oldest raw minute %v, want %v", u.OldestRaw, want)
	}
}

func rawUsage(t *testing.T, s *Store) store.KindUsage {
	t.Helper()
	u, err := s.Usage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range u.Kinds {
		if k.Kind == store.KindRaw {
			return k
		}
	}
	t.Fatal("no raw usage")
	return store.KindUsage{}
}
