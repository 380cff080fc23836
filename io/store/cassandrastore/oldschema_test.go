package cassandrastore_test

import (
	"context"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/adclick/adclick/io/store/cassandrastore"
)

// applyOldSchema creates ks as an older release's schema left it: each
// statement of today's schema goes through old, which returns the statement
// as it was then and whether it differs (changed), or skip for one that did
// not exist. It returns how many statements differed or were skipped, for
// the caller to check that the old schema is what it thinks.
func applyOldSchema(t *testing.T, hosts []string, ks string, old func(q string) (stmt string, changed, skip bool)) int {
	t.Helper()
	stmts, err := cassandrastore.Schema(ks, 1, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c := gocql.NewCluster(hosts...)
	c.Timeout = 30 * time.Second
	sess, err := c.CreateSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	differ := 0
	for _, q := range stmts {
		stmt, changed, skip := old(q)
		if changed || skip {
			differ++
		}
		if skip {
			continue
		}
		if err := sess.Query(stmt).WithContext(context.Background()).Exec(); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	return differ
}
