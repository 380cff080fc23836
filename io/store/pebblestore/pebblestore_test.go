package pebblestore_test

import (
	"testing"

	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/io/store/pebblestore"
	"github.com/adclick/adclick/io/store/storetest"
)

func open(t testing.TB) *pebblestore.Store {
	t.Helper()
	s, err := pebblestore.Open(t.TempDir(), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t) })
}

// TestConformanceShared runs the suite with every subtest on one store, the
// way the Cassandra backend runs it.
func TestConformanceShared(t *testing.T) {
	s := open(t)
	storetest.Run(t, func(*testing.T) store.Store { return s })
}

func BenchmarkWriteRaw(b *testing.B)   { storetest.BenchWriteRaw(b, open(b), 1000) }
func BenchmarkUpsert(b *testing.B)     { storetest.BenchUpsert(b, open(b), 1000) }
func BenchmarkCount60min(b *testing.B) { storetest.BenchCount(b, open(b)) }
