package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"time"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/io/store/backend"
	"github.com/adclick/adclick/io/store/cassandrastore"
	"github.com/adclick/adclick/io/store/pebblestore"
	"github.com/adclick/adclick/queryapi"
	"github.com/adclick/adclick/queryapi/internal/demodata"
	"github.com/adclick/adclick/queryapi/internal/memstore"
)

// demoStart is the first minute of the generated data: 2024-01-01T00:00Z.
const demoStart = int64(1704067200)

// startServer serves the query API on a loopback port over a store of the
// given kind filled with demo data. stop shuts it down and removes what it
// created.
func startServer(kind, dir, cassHosts string, cacheBytes int64, ads, minutes int) (base string, stop func(), err error) {
	st, cleanup, err := openStore(kind, dir, cassHosts, cacheBytes)
	if err != nil {
		return "", nil, err
	}
	defer func() {
		if err != nil {
			st.Close()
			cleanup()
		}
	}()
	if err := fillDemo(st, kind, ads, minutes); err != nil {
		return "", nil, err
	}
	base, stopServing, err := serve(st)
	if err != nil {
		return "", nil, err
	}
	return base, func() {
		stopServing()
		st.Close()
		cleanup()
	}, nil
}

// openStore opens an empty store of the given kind: a temporary Pebble
// directory unless dir is given, or a fresh Cassandra keyspace. cleanup
// removes what it created; call it after closing the store.
func openStore(kind, dir, cassHosts string, cacheBytes int64) (st store.Store, cleanup func(), err error) {
	cfg := backend.Config{Backend: kind}
	var cleanups []func()
	cleanup = func() {
		for _, f := range cleanups {
			f()
		}
	}
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	switch kind {
	case backend.Pebble:
		if dir == "" {
			d, err := os.MkdirTemp("", "adclick-loadtest-")
			if err != nil {
				return nil, nil, err
			}
			cleanups = append(cleanups, func() { os.RemoveAll(d) })
			dir = d
		}
		cfg.Path = dir
	case backend.Cassandra:
		cfg.Hosts = strings.Split(cassHosts, ",")
		cfg.Keyspace = fmt.Sprintf("adclick_load_%d", rand.Uint32())
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		err := cassandrastore.Migrate(ctx, cassandrastore.MigrateOptions{Hosts: cfg.Hosts, Keyspace: cfg.Keyspace})
		cancel()
		if err != nil {
			return nil, nil, err
		}
		cleanups = append(cleanups, func() { dropKeyspace(cfg.Hosts, cfg.Keyspace) })
	}
	switch {
	case kind == "mem":
		st = memstore.New()
	case kind == backend.Pebble && cacheBytes > 0:
		// storeio has no cache option: open the store directly.
		st, err = pebblestore.Open(dir, pebblestore.Options{CacheBytes: cacheBytes})
	default:
		st, err = backend.Open(context.Background(), cfg, nil)
	}
	if err != nil {
		return nil, nil, err
	}
	return st, cleanup, nil
}

func dropKeyspace(hosts []string, keyspace string) {
	c := gocql.NewCluster(hosts...)
	c.Timeout = 30 * time.Second
	if s, err := c.CreateSession(); err == nil {
		_ = s.Query("DROP KEYSPACE IF EXISTS " + keyspace).Exec()
		s.Close()
	}
}

// fillDemo writes the demo data set into st, in batches.
func fillDemo(st store.Store, kind string, ads, minutes int) error {
	start := time.Now()
	recs := demodata.Records(demodata.Spec{Start: demoStart, Minutes: minutes, Ads: ads, WindowSizes: queryapi.DefaultWindowSizes, TopN: 100})
	for i := 0; i < len(recs); i += 10000 {
		if err := st.Upsert(context.Background(), store.LiveGeneration, recs[i:min(i+10000, len(recs))]); err != nil {
			return err
		}
	}
	fmt.Printf("data: %s store, %d ads × %d minutes, %d records written in %s\n", kind, ads, minutes, len(recs), time.Since(start).Round(time.Millisecond))
	return nil
}

// serve runs the whole query API over st on a loopback port; stop shuts it
// down.
func serve(st store.Store) (base string, stop func(), err error) {
	tokens, _ := queryapi.ParseTokens("load:read:" + token)
	srv, err := queryapi.New(queryapi.Config{
		Store: st,
		// The access log is formatted as in production, then discarded.
		Logger:     slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Registerer: prometheus.NewRegistry(),
		Tokens:     tokens,
		// One client is the whole load: the limiter runs but never refuses.
		RateLimit: 1e9, RateBurst: 1e9,
	})
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	return "http://" + ln.Addr().String(), func() {
		cancel()
		<-done
	}, nil
}
