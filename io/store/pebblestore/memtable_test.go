package pebblestore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/io/store/pebblestore"
)

// TestMemTableBytes: MemTableBytes bounds the memtables Pebble allocates
// (outside the Go heap, so no heap profile shows them). The all-in-one sets
// it: with the default 64 MiB, its RSS rose for ~15 minutes as memtables
// doubled to 64 MiB and two of them stayed allocated. Fails if the option
// is not passed to Pebble (checked: 16 MiB allocated).
func TestMemTableBytes(t *testing.T) {
	const limit = 1 << 20
	s, err := pebblestore.Open(t.TempDir(), pebblestore.Options{MemTableBytes: limit})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	base := time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC).UnixMilli()
	clicks := make([]click.Click, 1000)
	maxSize := uint64(0)
	for n := 0; n < 60_000; n += len(clicks) { // ~12 MB of raw clicks
		for j := range clicks {
			k := n + j
			clicks[j] = click.Click{
				EventID: fmt.Sprintf("%016x-memtable-event", k), AdID: fmt.Sprintf("ad-%04d", k%1000),
				Time: base + int64(k)*3, UserID: "user-123456", IP: "203.0.113.7", Country: "US", Device: "ios", AdFormat: "banner",
			}
		}
		if err := s.WriteRaw(ctx, clicks); err != nil {
			t.Fatal(err)
		}
		maxSize = max(maxSize, s.DB().Metrics().MemTable.Size)
	}
	// The mutable memtable and up to MemTableStopWritesThreshold (4) more:
	// queued for a flush, being flushed, or the spare.
	if maxSize > 5*limit {
		t.Fatalf("memtables reached %d bytes with MemTableBytes %d", maxSize, limit)
	}
	t.Logf("memtables at most %d bytes", maxSize)
}
