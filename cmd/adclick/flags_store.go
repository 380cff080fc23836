package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/adclick/adclick/io/store/backend"
)

// storeOptions name a store on the command line (replay, reconcile,
// aggregate --from-store).
type storeOptions struct {
	backend, pebbleDir, hosts, keyspace, readCons, writeCons string
	sec                                                      cassandraSecurityFlags
}

func (f *storeOptions) register(fs *flag.FlagSet, backendFlag string) {
	fs.StringVar(&f.backend, backendFlag, "pebble", "store: pebble (embedded) or cassandra")
	// No backquotes in usage strings: the flag package prints a backquoted
	// word as the flag's value name ("-pebble-dir adclick serve").
	fs.StringVar(&f.pebbleDir, "pebble-dir", "data/pebble", "Pebble database directory (pebble); one process may open it at a time")
	fs.StringVar(&f.hosts, "cassandra-hosts", "", "Cassandra contact points, host[:port] comma-separated (cassandra)")
	fs.StringVar(&f.keyspace, "keyspace", "adclick", "Cassandra keyspace (cassandra)")
	fs.StringVar(&f.readCons, "read-consistency", "", "Cassandra read consistency (default LOCAL_QUORUM)")
	fs.StringVar(&f.writeCons, "write-consistency", "", "Cassandra write consistency (default LOCAL_QUORUM)")
	f.sec.register(fs)
}

func (f *storeOptions) config(env *cliEnv, backendFlag string) (backend.Config, error) {
	cfg := backend.Config{Backend: f.backend, Path: f.pebbleDir, Keyspace: f.keyspace,
		ReadConsistency: f.readCons, WriteConsistency: f.writeCons}
	for _, h := range strings.Split(f.hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			cfg.Hosts = append(cfg.Hosts, h)
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("%w: --%s: %v", errUsage, backendFlag, err)
	}
	return cfg, f.sec.apply(env, &cfg)
}
