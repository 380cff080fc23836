package cassandrastore

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"strings"
	"text/template"
	"time"

	"github.com/gocql/gocql"

	"github.com/adclick/adclick/io/store"
)

//go:embed schema.cql
var schemaCQL string

// MigrateOptions configure Migrate.
type MigrateOptions struct {
	Hosts             []string
	Keyspace          string        // default "adclick"
	ReplicationFactor int           // default 1
	RawTTL            time.Duration // table default TTL of raw clicks; default 30 days
	ConnectTimeout    time.Duration
	// DisableInitialHostLookup as in Options.
	DisableInitialHostLookup bool
	// Security as in Options.
	Security
}

// Schema renders the embedded schema for a keyspace: the statements Migrate runs.
func Schema(keyspace string, rf int, rawTTL time.Duration) ([]string, error) {
	if !validIdent(keyspace) {
		return nil, fmt.Errorf("%w: keyspace %q is not a plain identifier", store.ErrInvalid, keyspace)
	}
	if rf < 1 {
		return nil, fmt.Errorf("%w: replication factor %d", store.ErrInvalid, rf)
	}
	if rawTTL < time.Second {
		return nil, fmt.Errorf("%w: raw TTL %s", store.ErrInvalid, rawTTL)
	}
	t, err := template.New("schema").Parse(schemaCQL)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, map[string]any{"Keyspace": keyspace, "ReplicationFactor": rf, "RawTTL": int64(rawTTL / time.Second)}); err != nil {
		return nil, err
	}
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(buf.String(), "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		if i := strings.Index(line, "--"); i >= 0 {
			line = line[:i]
		}
		cur.WriteString(line)
		cur.WriteString("\n")
		if strings.HasSuffix(strings.TrimSpace(line), ";") {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	return out, nil
}

// Migrate applies the embedded schema; running it again changes nothing.
func Migrate(ctx context.Context, mo MigrateOptions) error {
	if mo.Keyspace == "" {
		mo.Keyspace = "adclick"
	}
	if mo.ReplicationFactor == 0 {
		mo.ReplicationFactor = 1
	}
	if mo.RawTTL == 0 {
		mo.RawTTL = 30 * 24 * time.Hour
	}
	stmts, err := Schema(mo.Keyspace, mo.ReplicationFactor, mo.RawTTL)
	if err != nil {
		return err
	}
	o := Options{Hosts: mo.Hosts, ConnectTimeout: mo.ConnectTimeout, DisableInitialHostLookup: mo.DisableInitialHostLookup, Security: mo.Security}
	if err := o.defaults(); err != nil {
		return err
	}
	c, err := newCluster(o)
	if err != nil {
		return err
	}
	c.Timeout = 30 * time.Second // schema agreement can take a while
	sess, err := c.CreateSession()
	if err != nil {
		return connectErr("migrate", o, err)
	}
	defer sess.Close()
	for _, st := range stmts {
		if err := sess.Query(st).WithContext(ctx).Consistency(gocql.All).Exec(); err != nil {
			// ALL fails while a replica is down; schema changes are
			// coordinated anyway, so retry once at the default.
			if err2 := sess.Query(st).WithContext(ctx).Exec(); err2 != nil {
				return fmt.Errorf("cassandrastore: migrate: %s: %w", firstLine(st), err2)
			}
		}
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
