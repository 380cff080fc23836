package cassandrastore_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store/cassandrastore"
	"github.com/adclick/adclick/testing/testenv"
)

// TestBeforeDigestMigrate: a keyspace whose counts table predates
// counts.digest keeps working for counts (writes with digests, Count,
// ScanCounts, CountDigest answering "unknown"); after `adclick migrate`, a
// running store picks the column up and stores digests, and the counts
// written before read back with their digests unknown.
func TestBeforeDigestMigrate(t *testing.T) {
	// The keyspace as the schema before digests made it. (Not by dropping
	// the column: Cassandra then ignores re-added cells written with a
	// timestamp before the drop, which merged counts are.)
	hosts, ks := testenv.CassandraKeyspace(t, "adclick_test")
	ctx := context.Background()
	columnDef := regexp.MustCompile(`(?m)^\s*digest\s+blob,.*$`)
	altered := applyOldSchema(t, hosts, ks, func(q string) (string, bool, bool) {
		if strings.Contains(q, "ADD IF NOT EXISTS digest") {
			return "", false, true
		}
		old := columnDef.ReplaceAllString(q, "")
		return old, old != q, false
	})
	if altered != 2 {
		t.Fatalf("found %d of the 2 digest statements in the schema: the old schema is not what this test thinks", altered)
	}
	s := open(t, cassandrastore.Options{Hosts: hosts, Keyspace: ks, Registerer: prometheus.NewRegistry()})
	b := time.Date(2031, 3, 1, 0, 0, 0, 0, time.UTC).Unix()
	d := result.Digest{Hi: 3, Lo: 4, Known: true}
	rec := func(m, n int64) []result.Record {
		return []result.Record{{Count: &result.Count{AdID: "ad", Minute: m, Count: n, Digest: d}}}
	}
	if err := s.Merge(ctx, 0, rec(b, 2)); err != nil {
		t.Fatalf("Merge before migrate: %v", err)
	}
	if n, err := s.Count(ctx, "ad", "", b, b+60); err != nil || n != 2 {
		t.Errorf("Count before migrate = %d, %v; want 2", n, err)
	}
	if n, got, err := s.CountDigest(ctx, "ad", "", b, b+60); err != nil || n != 2 || got.Known {
		t.Errorf("CountDigest before migrate = %d, %v, %v; want 2, unknown", n, got, err)
	}
	scanned := 0
	if err := s.ScanCounts(ctx, b, b+60, func(r result.Record) error {
		scanned++
		if r.Count.Digest.Known {
			t.Errorf("ScanCounts before migrate returned a digest: %v", r.Count.Digest)
		}
		return nil
	}); err != nil || scanned != 1 {
		t.Errorf("ScanCounts before migrate: %d records, %v", scanned, err)
	}

	if err := cassandrastore.Migrate(ctx, cassandrastore.MigrateOptions{Hosts: hosts, Keyspace: ks}); err != nil {
		t.Fatal(err)
	}
	fresh := open(t, cassandrastore.Options{Hosts: hosts, Keyspace: ks, Registerer: prometheus.NewRegistry()})
	if err := fresh.Merge(ctx, 0, rec(b+60, 3)); err != nil {
		t.Fatal(err)
	}
	if n, got, err := fresh.CountDigest(ctx, "ad", "", b+60, b+120); err != nil || n != 3 || got != d {
		t.Errorf("CountDigest after migrate = %d, %v, %v; want 3, %v", n, got, err, d)
	}
	if n, got, err := fresh.CountDigest(ctx, "ad", "", b, b+120); err != nil || n != 5 || got.Known {
		t.Errorf("CountDigest over a minute written before migrate = %d, %v, %v; want 5, unknown", n, got, err)
	}
}
