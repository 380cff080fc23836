package cassandrastore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/io/store/cassandrastore"
	"github.com/adclick/adclick/io/store/storetest"
	"github.com/adclick/adclick/io/testenv"
)

// newKeyspace migrates a fresh keyspace on the test Cassandra and drops it
// when the test ends.
func newKeyspace(t testing.TB) (hosts []string, ks string) {
	t.Helper()
	hosts = testenv.Cassandra(t)
	ks = fmt.Sprintf("adclick_test_%d", rand.Uint32())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := cassandrastore.Migrate(ctx, cassandrastore.MigrateOptions{Hosts: hosts, Keyspace: ks}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c := gocql.NewCluster(hosts...)
		c.Timeout = 30 * time.Second
		if s, err := c.CreateSession(); err == nil {
			s.Query("DROP KEYSPACE IF EXISTS " + ks).Exec()
			s.Close()
		}
	})
	return hosts, ks
}

func open(t testing.TB, o cassandrastore.Options) *cassandrastore.Store {
	t.Helper()
	s, err := cassandrastore.Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	hosts, ks := newKeyspace(t)
	s := open(t, cassandrastore.Options{Hosts: hosts, Keyspace: ks, Registerer: prometheus.NewRegistry()})
	storetest.Run(t, func(*testing.T) store.Store { return s })
}

func TestMigrateIdempotent(t *testing.T) {
	hosts, ks := newKeyspace(t)
	ctx := context.Background()
	if err := cassandrastore.Migrate(ctx, cassandrastore.MigrateOptions{Hosts: hosts, Keyspace: ks}); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if err := cassandrastore.Migrate(ctx, cassandrastore.MigrateOptions{Hosts: hosts, Keyspace: "bad-name"}); err == nil {
		t.Error("Migrate accepted keyspace bad-name")
	}
}

// TestPartitionToken checks the client-side Murmur3 token against
// Cassandra's token() for keys of every tail length.
func TestPartitionToken(t *testing.T) {
	hosts, ks := newKeyspace(t)
	c := gocql.NewCluster(hosts...)
	c.Keyspace = ks
	c.Timeout = 10 * time.Second
	sess, err := c.CreateSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	for i := 0; i < 40; i++ {
		ad := fmt.Sprintf("%s%d", string([]rune("広告-ad-xyzw")[:i%10]), i)
		if i%2 == 0 {
			ad = string(rune(0x80+i)) + ad
		}
		hour := int64(1700000000/3600*3600 + i*3600)
		if err := sess.Query("INSERT INTO raw_clicks (ad_id, hour, ts, event_id) VALUES (?, ?, 0, 'e')", ad, hour).Exec(); err != nil {
			t.Fatal(err)
		}
		var want int64
		if err := sess.Query("SELECT token(ad_id, hour) FROM raw_clicks WHERE ad_id = ? AND hour = ?", ad, hour).Scan(&want); err != nil {
			t.Fatal(err)
		}
		if got := cassandrastore.PartitionToken(ad, hour); got != want {
			t.Errorf("PartitionToken(%q, %d) = %d, Cassandra says %d", ad, hour, got, want)
		}
	}
}

func benchStore(b *testing.B) *cassandrastore.Store {
	hosts, ks := newKeyspace(b)
	return open(b, cassandrastore.Options{Hosts: hosts, Keyspace: ks, ReadConsistency: "ONE", WriteConsistency: "ONE", WriteConcurrency: 32})
}

func BenchmarkWriteRaw(b *testing.B)   { storetest.BenchWriteRaw(b, benchStore(b), 1000) }
func BenchmarkUpsert(b *testing.B)     { storetest.BenchUpsert(b, benchStore(b), 1000) }
func BenchmarkCount60min(b *testing.B) { storetest.BenchCount(b, benchStore(b)) }
