package cassandrastore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/io/store/cassandrastore"
	"github.com/adclick/adclick/testing/testenv"
)

// TestBeforeTooLateMigrate: a keyspace migrated before the too_late table
// existed reads no too-late records, refuses to write them with ErrInvalid
// naming `adclick migrate` (the DB writer then skips them, loudly, and goes
// on with the counts), and collects without error; after the migration
// they are stored.
func TestBeforeTooLateMigrate(t *testing.T) {
	hosts, ks := testenv.CassandraKeyspace(t, "adclick_test")
	ctx := context.Background()
	skipped := applyOldSchema(t, hosts, ks, func(q string) (string, bool, bool) {
		return q, false, strings.Contains(q, ".too_late (")
	})
	if skipped != 1 {
		t.Fatalf("found %d too_late tables in the schema, want 1", skipped)
	}
	s := open(t, cassandrastore.Options{Hosts: hosts, Keyspace: ks, Registerer: prometheus.NewRegistry()})
	m := time.Date(2031, 3, 1, 0, 0, 0, 0, time.UTC).Unix()
	rec := []result.TooLate{{AdID: "ad", Minute: m, Hashes: []result.Digest{result.EventDigest("x")}}}
	if got, err := s.TooLate(ctx, store.LiveGeneration, "ad", m); err != nil || len(got) != 0 {
		t.Errorf("TooLate before migrate = %v, %v; want none", got, err)
	}
	err := s.AddTooLate(ctx, store.LiveGeneration, rec)
	if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "adclick migrate") {
		t.Errorf("AddTooLate before migrate: %v; want ErrInvalid naming adclick migrate", err)
	}
	if _, err := s.Collect(ctx, store.Collection{RawBefore: time.Unix(m-86400, 0)}); err != nil {
		t.Errorf("Collect before migrate: %v", err)
	}
	if err := cassandrastore.Migrate(ctx, cassandrastore.MigrateOptions{Hosts: hosts, Keyspace: ks}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddTooLate(ctx, store.LiveGeneration, rec); err != nil {
		t.Fatalf("AddTooLate after migrate: %v", err)
	}
	if got, err := s.TooLate(ctx, store.LiveGeneration, "ad", m); err != nil || len(got) != 1 || got[0] != rec[0].Hashes[0] {
		t.Errorf("TooLate after migrate = %v, %v", got, err)
	}
}
