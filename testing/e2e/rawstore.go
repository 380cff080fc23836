package e2e

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/io/store/backend"
)

// RawPebble writes the valid clicks among lines into a fresh Pebble store
// (closed with the test) and returns its directory, the whole minutes
// covering them, and the open store: the input of a replay or a recount
// from the store.
func RawPebble(t testing.TB, lines [][]byte) (dir string, from, to time.Time, st store.Store) {
	t.Helper()
	var p click.Parser
	var clicks []click.Click
	lo, hi := int64(1<<62), int64(-1<<62)
	for _, l := range lines {
		if c, err := p.Parse(l); err == nil {
			clicks = append(clicks, c)
			lo, hi = min(lo, c.Minute()), max(hi, c.Minute())
		}
	}
	dir = filepath.Join(t.TempDir(), "pebble")
	st, err := backend.Open(context.Background(), backend.Config{Backend: backend.Pebble, Path: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.WriteRaw(context.Background(), clicks); err != nil {
		t.Fatal(err)
	}
	return dir, time.Unix(lo, 0).UTC(), time.Unix(hi+60, 0).UTC(), st
}
