package main

import (
	"context"
	"errors"
	"flag"
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
	var o serveOptions
	o.register(fs)
	rf := newRetentionFlags(fs, serverRetention)
	if err := parseFlags(fs, env, args); err != nil {
		return err
	}
	sizes, toks, cfg, err := o.validate()
	if err != nil {
		return err
	}
	if err := o.sec.apply(env, &cfg); err != nil {
		return err
	}
	rf.apply(&cfg)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	st, err := backend.Open(ctx, cfg, reg)
	if err != nil {
		return fmt.Errorf("open the %s store: %w", o.storeKind, err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			env.log.Warn("closing the store", "err", err)
		}
	}()
	ctx, storeErr := untilStoreFails(ctx, st)
	defer storeErr()
	defer rf.start(ctx, env, st, cfg.Backend, reg)() // stops before the store closes
	srv, err := queryapi.New(queryapi.Config{
		Store:           st,
		Logger:          env.log.With("component", "queryapi"),
		Registerer:      reg,
		WindowSizes:     sizes,
		TopN:            o.topN,
		MaxRange:        o.maxRange,
		QueryTimeout:    o.queryTimeout,
		Tokens:          toks,
		Insecure:        o.insecure,
		RateLimit:       o.rateLimit,
		RateBurst:       o.rateBurst,
		ShutdownTimeout: o.shutdown,
		// POST /admin/replay runs a replay in this process (the only way
		// to replay an embedded store the server holds open).
		Admin:  replayadmin.New(ctx, cfg, replayadmin.Config(sizes, o.topN), env.log.With("component", "replay")),
		Clicks: clicksHook(st), // GET /admin/ads/{ad_id}/clicks
	})
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	err = srv.ListenAndServe(ctx, o.listen)
	if ferr := storeErr(); ferr != nil {
		return ferr
	}
	return err
}

// serveOptions are the flags of adclick serve.
type serveOptions struct {
	listen, storeKind, pebbleDir, cassHosts, keyspace, readCons string
	tokens, tokensFile, windows                                 string
	insecure                                                    bool
	topN, rateBurst                                             int
	maxRange, queryTimeout, shutdown                            time.Duration
	rateLimit                                                   float64
	sec                                                         cassandraSecurityFlags
}

func (o *serveOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address to serve HTTP on (host:port)")
	fs.StringVar(&o.storeKind, "store", "pebble", "aggregation store: pebble (embedded) or cassandra")
	fs.StringVar(&o.pebbleDir, "pebble-dir", "data/pebble", "Pebble database directory (--store pebble); one process may open it at a time")
	fs.StringVar(&o.cassHosts, "cassandra-hosts", "", "Cassandra contact points, host[:port] comma-separated (--store cassandra)")
	fs.StringVar(&o.keyspace, "keyspace", "adclick", "Cassandra keyspace (--store cassandra)")
	fs.StringVar(&o.readCons, "read-consistency", "", "Cassandra read consistency (default: the backend's, LOCAL_QUORUM)")
	o.sec.register(fs)
	fs.StringVar(&o.tokens, "tokens", "", "bearer tokens name:role:token,... (roles read, admin); prefer ADCLICK_TOKENS or --tokens-file over the command line")
	fs.StringVar(&o.tokensFile, "tokens-file", "", "file with one name:role:token per line (# comments)")
	fs.BoolVar(&o.insecure, "insecure", false, "serve without authentication: ONLY for the local all-in-one")
	fs.StringVar(&o.windows, "window-sizes", "1,5,15,60", "configured top-N window sizes in minutes")
	fs.IntVar(&o.topN, "top-n", queryapi.DefaultTopN, "N of the stored top lists (the largest top_n a client may ask)")
	fs.DurationVar(&o.maxRange, "max-range", queryapi.DefaultMaxRange, "longest aggregated_count range")
	fs.DurationVar(&o.queryTimeout, "query-timeout", queryapi.DefaultQueryTimeout, "timeout of one store call")
	fs.Float64Var(&o.rateLimit, "rate-limit", queryapi.DefaultRateLimit, "requests per second per client (token, or IP); negative disables")
	fs.IntVar(&o.rateBurst, "rate-burst", queryapi.DefaultRateBurst, "rate-limit bucket size")
	fs.DurationVar(&o.shutdown, "shutdown-timeout", 10*time.Second, "how long to drain in-flight requests on SIGTERM")
}

// validate checks the flags and returns the window sizes, the tokens and
// the store's configuration.
func (o *serveOptions) validate() ([]int, []queryapi.Token, backend.Config, error) {
	var cfg backend.Config
	sizes, err := parseWindowSizes(o.windows)
	if err != nil {
		return nil, nil, cfg, fmt.Errorf("%w: --window-sizes: %v", errUsage, err)
	}
	toks, err := o.loadTokens()
	if err != nil {
		return nil, nil, cfg, err
	}
	cfg = backend.Config{Backend: o.storeKind, Path: o.pebbleDir, Keyspace: o.keyspace, ReadConsistency: o.readCons}
	for _, h := range strings.Split(o.cassHosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			cfg.Hosts = append(cfg.Hosts, h)
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, nil, cfg, fmt.Errorf("%w: %v", errUsage, err)
	}
	return sizes, toks, cfg, nil
}

// loadTokens reads --tokens and --tokens-file; none at all is an error
// unless --insecure.
func (o *serveOptions) loadTokens() ([]queryapi.Token, error) {
	var toks []queryapi.Token
	if o.tokens != "" {
		t, err := queryapi.ParseTokens(o.tokens)
		if err != nil {
			return nil, fmt.Errorf("%w: --tokens: %v", errUsage, err)
		}
		toks = append(toks, t...)
	}
	if o.tokensFile != "" {
		t, err := queryapi.ReadTokensFile(o.tokensFile)
		if err != nil {
			return nil, fmt.Errorf("%w: --tokens-file: %v", errUsage, err)
		}
		toks = append(toks, t...)
	}
	if len(toks) == 0 && !o.insecure {
		return nil, fmt.Errorf("%w: no tokens: give --tokens, ADCLICK_TOKENS or --tokens-file (or --insecure for the local all-in-one)", errUsage)
	}
	return toks, nil
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
