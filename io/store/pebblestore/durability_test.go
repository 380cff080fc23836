package pebblestore

import (
	"context"
	"testing"

	"github.com/cockroachdb/pebble/vfs"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
)

// TestSyncSurvivesPowerCut: on Pebble's crash-simulating filesystem (what
// was not fsynced is dropped at the "power cut"), writes before a Sync
// survive and writes after it are lost — the store's own fresh directory
// included, which Pebble alone does not sync into its parent.
func TestSyncSurvivesPowerCut(t *testing.T) {
	ctx := context.Background()
	const m = 1704103260
	rec := func(ad string, n int64) []result.Record {
		return []result.Record{{Count: &result.Count{AdID: ad, Minute: m, Count: n}}}
	}
	fs := vfs.NewStrictMem()
	st, err := Open("/data/db", Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Merge(ctx, store.LiveGeneration, rec("synced", 3)); err != nil {
		t.Fatal(err)
	}
	if err := st.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.Merge(ctx, store.LiveGeneration, rec("unsynced", 5)); err != nil {
		t.Fatal(err)
	}
	fs.SetIgnoreSyncs(true) // the power goes: Close's own syncs do not happen
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	fs.ResetToSyncedState()
	fs.SetIgnoreSyncs(false)

	st, err = Open("/data/db", Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for ad, want := range map[string]int64{"synced": 3, "unsynced": 0} {
		n, err := st.Count(ctx, ad, "", m, m+60)
		if err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("%s: count %d after the power cut, want %d", ad, n, want)
		}
	}
}
