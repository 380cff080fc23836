package testenv

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gocql/gocql"
)

// CassandraKeyspace returns the test Cassandra's addresses (ending the test
// when none runs, as Cassandra does) and a keyspace name no other test uses,
// prefix followed by a random number. The keyspace is not created: the test
// creates it (cassandrastore.Migrate, `adclick migrate`), and it is dropped
// when the test and all its cleanups registered after this call have ended.
//
// Nothing here knows the schema, so testenv stays free of the store packages
// and their own tests can use it.
func CassandraKeyspace(t testing.TB, prefix string) (hosts []string, keyspace string) {
	t.Helper()
	if !validPrefix(prefix) {
		t.Fatalf("testenv: keyspace prefix %q is not a short lower-case identifier", prefix)
	}
	hosts = Cassandra(t)
	return hosts, keyspaceFor(t, prefix, func() (*gocql.ClusterConfig, error) {
		c := gocql.NewCluster(hosts...)
		c.Timeout = 30 * time.Second // a schema change waits for agreement
		return c, nil
	})
}

// keyspaceFor names a fresh keyspace and drops it at the end of the test
// through a session of cluster (the plain node's, or the secured one's).
func keyspaceFor(t testing.TB, prefix string, cluster func() (*gocql.ClusterConfig, error)) string {
	t.Helper()
	if !validPrefix(prefix) {
		t.Fatalf("testenv: keyspace prefix %q is not a short lower-case identifier", prefix)
	}
	keyspace := fmt.Sprintf("%s_%d", prefix, rand.Uint32())
	t.Cleanup(func() {
		if err := dropKeyspace(cluster, keyspace); err != nil {
			t.Logf("testenv: leaving keyspace %s: %v", keyspace, err)
		}
	})
	return keyspace
}

// validPrefix accepts a lower-case keyspace name (a letter, then letters,
// digits and underscores) short enough to take "_" and ten digits within
// Cassandra's 48 characters.
func validPrefix(p string) bool {
	if p == "" || len(p) > 37 {
		return false
	}
	for i, r := range p {
		if !(r >= 'a' && r <= 'z' || i > 0 && (r == '_' || r >= '0' && r <= '9')) {
			return false
		}
	}
	return true
}

func dropKeyspace(cluster func() (*gocql.ClusterConfig, error), keyspace string) error {
	c, err := cluster()
	if err != nil {
		return err
	}
	s, err := c.CreateSession()
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer s.Close()
	if err := s.Query("DROP KEYSPACE IF EXISTS " + keyspace).Exec(); err != nil {
		return fmt.Errorf("drop: %w", err)
	}
	return nil
}
