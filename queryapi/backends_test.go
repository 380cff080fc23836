package queryapi

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/adclick/adclick/io/store/cassandrastore"
	"github.com/adclick/adclick/io/store/pebblestore"
	"github.com/adclick/adclick/testing/testenv"
)

// backends lists the stores the end-to-end tests run against: the test fake,
// the embedded Pebble store and Cassandra (the real server testing/testenv
// starts; the test fails without it unless ADCLICK_SKIP_INTEGRATION=1).
func backends(t *testing.T) []backend {
	return []backend{memBackend(), pebbleBackend(), cassandraBackend()}
}

func pebbleBackend() backend {
	return backend{"pebble", func(t testing.TB) storeUnderTest {
		st, err := pebblestore.Open(t.TempDir(), pebblestore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := st.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
		return st
	}}
}

// cassandraBackend opens a freshly migrated keyspace, dropped at the end.
func cassandraBackend() backend {
	return backend{"cassandra", func(t testing.TB) storeUnderTest {
		hosts, ks := testenv.CassandraKeyspace(t, "adclick_queryapi")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := cassandrastore.Migrate(ctx, cassandrastore.MigrateOptions{Hosts: hosts, Keyspace: ks}); err != nil {
			t.Fatal(err)
		}
		st, err := cassandrastore.Open(ctx, cassandrastore.Options{Hosts: hosts, Keyspace: ks, Registerer: prometheus.NewRegistry()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() }) // before the keyspace is dropped
		return st
	}}
}
