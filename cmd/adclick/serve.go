package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/adclick/adclick/io/store/backend"
	"github.com/adclick/adclick/queryapi"
	"github.com/adclick/adclick/services/replayadmin"
)

// runServe runs the query service (docs/spec.md §3) over the aggregation store.
func runServe(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "serve")
	listen := fs.String("listen", "127.0.0.1:8080", "address to serve HTTP on (host:port)")
	storeKind := fs.String("store", "pebble", "aggregation store: pebble (embedded) or cassandra")
	pebbleDir := fs.String("pebble-dir", "data/pebble", "Pebble database directory (--store pebble); one process may open it at a time")
	cassHosts := fs.String("cassandra-hosts", "", "Cassandra contact points, host[:port] comma-separated (--store cassandra)")
	keyspace := fs.String("keyspace", "adclick", "Cassandra keyspace (--store cassandra)")
	readCons := fs.String("read-consistency", "", "Cassandra read consistency (default: the backend's, LOCAL_QUORUM)")
	tokens := fs.String("tokens", "", "bearer tokens name:role:token,... (roles read, admin); prefer ADCLICK_TOKENS or --tokens-file over the command line")
	tokensFile := fs.String("tokens-file", "", "file with one name:role:token per line (# comments)")
	insecure := fs.Bool("insecure", false, "serve without authentication: ONLY for the local all-in-one")
	windows := fs.String("window-sizes", "1,5,15,60", "configured top-N window sizes in minutes")
	topN := fs.Int("top-n", queryapi.DefaultTopN, "N of the stored top lists (the largest top_n a client may ask)")
	maxRange := fs.Duration("max-range", queryapi.DefaultMaxRange, "longest aggregated_count range")
	queryTimeout := fs.Duration("query-timeout", queryapi.DefaultQueryTimeout, "timeout of one store call")
	rateLimit := fs.Float64("rate-limit", queryapi.DefaultRateLimit, "requests per second per client (token, or IP); negative disables")
	rateBurst := fs.Int("rate-burst", queryapi.DefaultRateBurst, "rate-limit bucket size")
	shutdown := fs.Duration("shutdown-timeout", 10*time.Second, "how long to drain in-flight requests on SIGTERM")
	if err := parseFlags(fs, env, args); err != nil {
		return err
	}

	sizes, err := parseWindowSizes(*windows)
	if err != nil {
		return fmt.Errorf("%w: --window-sizes: %v", errUsage, err)
	}
	var toks []queryapi.Token
	if *tokens != "" {
		t, err := queryapi.ParseTokens(*tokens)
		if err != nil {
			return fmt.Errorf("%w: --tokens: %v", errUsage, err)
		}
		toks = append(toks, t...)
	}
	if *tokensFile != "" {
		t, err := queryapi.ReadTokensFile(*tokensFile)
		if err != nil {
			return fmt.Errorf("%w: --tokens-file: %v", errUsage, err)
		}
		toks = append(toks, t...)
	}
	if len(toks) == 0 && !*insecure {
		return fmt.Errorf("%w: no tokens: give --tokens, ADCLICK_TOKENS or --tokens-file (or --insecure for the local all-in-one)", errUsage)
	}

	cfg := backend.Config{Backend: *storeKind, Path: *pebbleDir, Keyspace: *keyspace, ReadConsistency: *readCons}
	for _, h := range strings.Split(*cassHosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			cfg.Hosts = append(cfg.Hosts, h)
		}
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	st, err := backend.Open(ctx, cfg, reg)
	if err != nil {
		return fmt.Errorf("open the %s store: %w", *storeKind, err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			env.log.Warn("closing the store", "err", err)
		}
	}()
	srv, err := queryapi.New(queryapi.Config{
		Store:           st,
		Logger:          env.log.With("component", "queryapi"),
		Registerer:      reg,
		WindowSizes:     sizes,
		TopN:            *topN,
		MaxRange:        *maxRange,
		QueryTimeout:    *queryTimeout,
		Tokens:          toks,
		Insecure:        *insecure,
		RateLimit:       *rateLimit,
		RateBurst:       *rateBurst,
		ShutdownTimeout: *shutdown,
		// POST /admin/replay runs a replay in this process (the only way
		// to replay an embedded store the server holds open).
		Admin: replayadmin.New(ctx, cfg, replayadmin.Config(sizes, *topN), env.log.With("component", "replay")),
	})
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return srv.ListenAndServe(ctx, *listen)
}

func parseWindowSizes(s string) ([]int, error) {
	var out []int
	seen := map[int]bool{}
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive number of minutes", p)
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no window size")
	}
	return out, nil
}
