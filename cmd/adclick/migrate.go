package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/adclick/adclick/io/store/backend"
	"github.com/adclick/adclick/io/store/cassandrastore"
)

// runMigrate applies the embedded Cassandra schema (keyspace and tables);
// running it again changes nothing.
func runMigrate(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "migrate")
	var (
		hosts, keyspace string
		rf              int
		rawTTL, timeout time.Duration
		printOnly       bool
		sec             cassandraSecurityFlags
	)
	fs.StringVar(&hosts, "cassandra-hosts", "", "Cassandra contact points, host[:port] comma-separated (required unless --print)")
	fs.StringVar(&keyspace, "keyspace", "adclick", "keyspace to create")
	fs.IntVar(&rf, "replication-factor", 1, "keyspace replication factor (SimpleStrategy)")
	fs.DurationVar(&rawTTL, "raw-ttl", 30*24*time.Hour, "default TTL of raw clicks")
	fs.DurationVar(&timeout, "timeout", 2*time.Minute, "give up after this long")
	fs.BoolVar(&printOnly, "print", false, "print the CQL statements instead of applying them")
	sec.register(fs)
	if err := parseFlags(fs, env, args); err != nil {
		return err
	}
	if rf < 1 {
		return fmt.Errorf("%w: --replication-factor must be at least 1", errUsage)
	}
	if rawTTL < time.Second {
		return fmt.Errorf("%w: --raw-ttl must be at least 1s", errUsage)
	}
	if printOnly {
		stmts, err := cassandrastore.Schema(keyspace, rf, rawTTL)
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		for _, s := range stmts {
			fmt.Fprintf(env.stdout, "%s;\n\n", s)
		}
		return nil
	}
	var hs []string
	for _, h := range strings.Split(hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hs = append(hs, h)
		}
	}
	if len(hs) == 0 {
		return fmt.Errorf("%w: --cassandra-hosts is required", errUsage)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := cassandrastore.Schema(keyspace, rf, rawTTL); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	login := backend.Config{Backend: backend.Cassandra, Hosts: hs}
	if err := sec.apply(env, &login); err != nil {
		return err
	}
	security, err := login.CassandraSecurity()
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := cassandrastore.Migrate(ctx, cassandrastore.MigrateOptions{
		Hosts: hs, Keyspace: keyspace, ReplicationFactor: rf, RawTTL: rawTTL, Security: security,
	}); err != nil {
		return err
	}
	env.log.Info("schema applied", "keyspace", keyspace, "replication_factor", rf, "hosts", hs)
	return nil
}
