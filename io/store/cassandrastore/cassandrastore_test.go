package cassandrastore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/io/store/cassandrastore"
	"github.com/adclick/adclick/io/store/storetest"
	"github.com/adclick/adclick/testing/testenv"
)

// newKeyspace migrates a fresh keyspace on the test Cassandra and drops it
// when the test ends.
func newKeyspace(t testing.TB) (hosts []string, ks string) {
	t.Helper()
	hosts, ks = testenv.CassandraKeyspace(t, "adclick_test")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := cassandrastore.Migrate(ctx, cassandrastore.MigrateOptions{Hosts: hosts, Keyspace: ks}); err != nil {
		t.Fatal(err)
	}
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

// TestMigrateAddsTopRange: a keyspace whose generations table predates
// top_to_minute gets the column from Migrate, and its old generations serve
// their top lists over their count range, as they did.
func TestMigrateAddsTopRange(t *testing.T) {
	hosts, ks := newKeyspace(t)
	ctx := context.Background()
	c := gocql.NewCluster(hosts...)
	c.Keyspace = ks
	c.Timeout = 30 * time.Second
	sess, err := c.CreateSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	// The table as it was, with one committed generation over minutes [0, 10).
	b := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	for _, q := range []string{
		"ALTER TABLE generations DROP top_to_minute",
		fmt.Sprintf("INSERT INTO generations (p, gen, from_minute, to_minute, seq) VALUES (0, 1, %d, %d, 1)", b, b+600),
	} {
		if err := sess.Query(q).WithContext(ctx).Exec(); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := cassandrastore.Migrate(ctx, cassandrastore.MigrateOptions{Hosts: hosts, Keyspace: ks}); err != nil {
		t.Fatalf("Migrate of the old table: %v", err)
	}
	s := open(t, cassandrastore.Options{Hosts: hosts, Keyspace: ks, Registerer: prometheus.NewRegistry()})
	w := 5
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
	// New generations record their own top range.
	g, err := s.NewGeneration(ctx, b+600, b+660, b+1200)
	if err != nil {
		t.Fatal(err)
	}
	var topTo int64
	if err := sess.Query("SELECT top_to_minute FROM generations WHERE p = 0 AND gen = ?", int64(g)).WithContext(ctx).Scan(&topTo); err != nil || topTo != b+1200 {
		t.Errorf("stored top_to_minute = %d, %v; want %d", topTo, err, b+1200)
	}
}

// TestBeforeLifecycleMigrate: a keyspace migrated before the lifecycle
// table and generations.collected_at existed still serves (generations
// included); a collection says to run migrate; after migrate it collects.
func TestBeforeLifecycleMigrate(t *testing.T) {
	hosts, ks := newKeyspace(t)
	ctx := context.Background()
	c := gocql.NewCluster(hosts...)
	c.Keyspace = ks
	c.Timeout = 30 * time.Second
	sess, err := c.CreateSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	for _, q := range []string{"ALTER TABLE generations DROP collected_at", "DROP TABLE lifecycle"} {
		if err := sess.Query(q).WithContext(ctx).Exec(); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s := open(t, cassandrastore.Options{Hosts: hosts, Keyspace: ks, Registerer: prometheus.NewRegistry()})
	b := time.Date(2031, 2, 1, 0, 0, 0, 0, time.UTC).Unix()
	cnt := func(n int64) []result.Record {
		return []result.Record{{Count: &result.Count{AdID: "ad", Minute: b, Count: n}}}
	}
	if err := s.Upsert(ctx, 0, cnt(1)); err != nil {
		t.Fatal(err)
	}
	g, err := s.NewGeneration(ctx, b, b+60, b+60)
	if err == nil {
		err = s.Upsert(ctx, g, cnt(5))
	}
	if err == nil {
		err = s.CommitGeneration(ctx, g)
	}
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.Count(ctx, "ad", "", b, b+60); err != nil || n != 5 {
		t.Errorf("Count before migrate = %d, %v; want the generation's 5", n, err)
	}
	if h, err := s.RawHorizon(ctx); err != nil || !h.IsZero() {
		t.Errorf("RawHorizon before migrate = %v, %v; want none", h, err)
	}
	col := store.Collection{SupersededBefore: time.Now().Add(time.Second)}
	if _, err := s.Collect(ctx, col); err == nil || !strings.Contains(err.Error(), "migrate") {
		t.Errorf("Collect before migrate: %v, want an error saying to run migrate", err)
	}
	if err := cassandrastore.Migrate(ctx, cassandrastore.MigrateOptions{Hosts: hosts, Keyspace: ks}); err != nil {
		t.Fatal(err)
	}
	s = open(t, cassandrastore.Options{Hosts: hosts, Keyspace: ks, Registerer: prometheus.NewRegistry()})
	if st, err := s.Collect(ctx, col); err != nil || st.Generations != 1 {
		t.Errorf("Collect after migrate = %+v, %v; want the generation collected", st, err)
	}
	if n, err := s.Rows(ctx, 0, b, b+60); err != nil || n != 0 {
		t.Errorf("after the collection the live generation holds %d rows the generation replaced (%v)", n, err)
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
