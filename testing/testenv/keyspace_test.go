package testenv

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gocql/gocql"
)

// TestCassandraKeyspace: the name is fresh and usable, and the keyspace a
// test creates under it is gone once that test has ended.
func TestCassandraKeyspace(t *testing.T) {
	var hosts []string
	var names []string
	for i := 0; i < 2; i++ {
		ok := t.Run("create", func(t *testing.T) {
			var ks string
			hosts, ks = CassandraKeyspace(t, "adclick_testenv")
			if !strings.HasPrefix(ks, "adclick_testenv_") || len(ks) > 48 {
				t.Fatalf("keyspace name %q", ks)
			}
			names = append(names, ks)
			s := session(t, hosts)
			if err := s.Query("CREATE KEYSPACE " + ks + " WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}").Exec(); err != nil {
				t.Fatal(err)
			}
			if !exists(t, s, ks) {
				t.Fatalf("keyspace %s not created", ks)
			}
		})
		if !ok {
			return
		}
	}
	if len(names) != 2 || names[0] == names[1] {
		t.Fatalf("keyspace names %v: want two different ones", names)
	}
	s := session(t, hosts)
	for _, ks := range names {
		if exists(t, s, ks) {
			t.Errorf("keyspace %s still exists after its test ended", ks)
		}
	}
}

func TestCassandraKeyspacePrefix(t *testing.T) {
	for p, want := range map[string]bool{
		"adclick_io": true, "a": true, "x9_": true, strings.Repeat("a", 37): true,
		"": false, "9a": false, "_a": false, "Adclick": false, "ad-click": false, "a b": false, strings.Repeat("a", 38): false,
	} {
		if got := validPrefix(p); got != want {
			t.Errorf("validPrefix(%q) = %v, want %v", p, got, want)
		}
	}
}

func session(t *testing.T, hosts []string) *gocql.Session {
	t.Helper()
	c := gocql.NewCluster(hosts...)
	c.Timeout = 30 * time.Second
	s, err := c.CreateSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func exists(t *testing.T, s *gocql.Session, ks string) bool {
	t.Helper()
	var name string
	err := s.Query("SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ?", ks).Scan(&name)
	if errors.Is(err, gocql.ErrNotFound) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}
