package dbwriter

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/adclick/adclick/io/store/pebblestore"
)

// resultsFixture is an in-process broker with a results topic of the given
// partitions and a fresh Pebble store, both closed when the test ends.
func resultsFixture(t *testing.T, partitions int32) ([]string, *pebblestore.Store) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, "results"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ps, err := pebblestore.Open(t.TempDir(), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ps.Close() })
	return c.ListenAddrs(), ps
}
