package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"github.com/adclick/adclick/io/store/cassandrastore"
	"github.com/adclick/adclick/testing/testenv"
)

func migrateEnv(stdout, stderr io.Writer) *cliEnv {
	return &cliEnv{stdin: strings.NewReader(""), stdout: stdout, stderr: stderr, getenv: func(string) string { return "" }}
}

func TestMigrateUsage(t *testing.T) {
	for _, args := range [][]string{
		{"migrate"},
		{"migrate", "--cassandra-hosts", "127.0.0.1:1", "--replication-factor", "0"},
		{"migrate", "--cassandra-hosts", "127.0.0.1:1", "--keyspace", "no-dashes"},
	} {
		var errb bytes.Buffer
		if code := run(context.Background(), args, migrateEnv(io.Discard, &errb)); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errb.String())
		}
	}
	var out bytes.Buffer
	if code := run(context.Background(), []string{"migrate", "--print", "--keyspace", "ks9", "--replication-factor", "3"}, migrateEnv(&out, io.Discard)); code != 0 {
		t.Fatalf("--print exit %d", code)
	}
	if s := out.String(); !strings.Contains(s, "CREATE KEYSPACE IF NOT EXISTS ks9") || !strings.Contains(s, "'replication_factor': 3") ||
		!strings.Contains(s, "CREATE TABLE IF NOT EXISTS ks9.raw_clicks") {
		t.Errorf("--print output:\n%s", s)
	}
}

// TestMigrateCassandra applies the schema twice to the real Cassandra.
func TestMigrateCassandra(t *testing.T) {
	hosts, ks := testenv.CassandraKeyspace(t, "adclick_migrate")
	for i := 0; i < 2; i++ {
		var errb bytes.Buffer
		args := []string{"migrate", "--cassandra-hosts", strings.Join(hosts, ","), "--keyspace", ks}
		if code := run(context.Background(), args, migrateEnv(io.Discard, &errb)); code != 0 {
			t.Fatalf("run %d: exit %d: %s", i+1, code, errb.String())
		}
	}
	c := gocql.NewCluster(hosts...)
	c.Keyspace = ks
	c.Timeout = 10 * time.Second
	s, err := c.CreateSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Every table of the schema, and nothing else: counted from the
	// schema's statements, so a new table needs no edit here.
	stmts, err := cassandrastore.Schema(ks, 1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, st := range stmts {
		if strings.Contains(strings.ToUpper(st), "CREATE TABLE") {
			want++
		}
	}
	var n int
	if err := s.Query("SELECT count(*) FROM system_schema.tables WHERE keyspace_name = ?", ks).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if want == 0 || n != want {
		t.Errorf("keyspace has %d tables, want the schema's %d", n, want)
	}
}
