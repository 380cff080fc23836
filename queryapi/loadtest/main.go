// Command loadtest measures the query API's throughput and latency:
// aggregated_count over 60-minute ranges and popular_ads, with keep-alive
// HTTP clients at a fixed concurrency, reporting req/s and p50/p99/p99.9.
//
// By default it starts the whole server in this process (auth, rate limiter,
// metrics, JSON access log to a discarded writer, gzip middleware) over an
// embedded Pebble store (or Cassandra, -store cassandra) filled with demo data, so the figure includes the
// load generator's own CPU, as on the target machine. With -url it loads an
// external server instead.
//
//	go run ./queryapi/loadtest -duration 10s -conns 16
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
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

const token = "loadtest-token-0123456789"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

func run() error {
	target := flag.String("url", "", "base URL of a running server (default: start one in-process)")
	tok := flag.String("token", token, "bearer token for -url")
	scenarios := flag.String("scenarios", "count60,popular", "comma-separated: count60, count60-filter, popular")
	duration := flag.Duration("duration", 10*time.Second, "run time of each scenario")
	warmup := flag.Duration("warmup", 3*time.Second, "unmeasured run before each scenario (lets the store finish compacting the fresh data)")
	conns := flag.Int("conns", 16, "concurrent keep-alive connections")
	clientKind := flag.String("client", "raw", "raw: a minimal HTTP/1.1 keep-alive client (like wrk); std: net/http's client")
	ads := flag.Int("ads", 200, "ads in the generated data (in-process server)")
	minutes := flag.Int("minutes", 360, "minutes of generated data (in-process server)")
	dir := flag.String("dir", "", "Pebble directory for the in-process server (default: a temporary one)")
	storeKind := flag.String("store", "pebble", "store of the in-process server: pebble, cassandra, or mem (the test fake: isolates the API's own cost)")
	cacheMB := flag.Int64("pebble-cache-mb", 0, "Pebble block cache in MiB (0: the store's default, 64)")
	cassHosts := flag.String("cassandra-hosts", "", "Cassandra contact points (-store cassandra); a keyspace adclick_load_<n> is created and dropped")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run (server and generator) here")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	base := *target
	if base == "" {
		b, stop, err := startServer(*storeKind, *dir, *cassHosts, *cacheMB<<20, *ads, *minutes)
		if err != nil {
			return err
		}
		defer stop()
		base = b
		*tok = token
	}
	fmt.Printf("machine: %d CPUs (GOMAXPROCS %d), %s/%s, %s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())
	fmt.Printf("target: %s, %d connections (%s client), %s per scenario after %s warm-up\n", base, *conns, *clientKind, *duration, *warmup)
	for _, sc := range strings.Split(*scenarios, ",") {
		gen, err := scenario(strings.TrimSpace(sc), *ads, *minutes)
		if err != nil {
			return err
		}
		load(base, *tok, gen, *conns, *warmup, *clientKind) // warm-up: caches, connections
		cpu0 := cpuTime()
		res := load(base, *tok, gen, *conns, *duration, *clientKind)
		// CPU time per request (server and generator together, as this
		// process holds both) is far less disturbed by other jobs on the
		// machine than wall-clock throughput; NumCPU / it is the rate the
		// machine could sustain with the cores to itself.
		cpuPer := (cpuTime() - cpu0) / time.Duration(max(1, len(res.lat)))
		fmt.Printf("%-15s %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms  p99.9 %6.2f ms  max %6.2f ms  (%d requests, %d non-200)  CPU %5.1f µs/req → %6.0f req/s on %d idle cores\n",
			sc, res.rate, ms(res.p(0.50)), ms(res.p(0.99)), ms(res.p(0.999)), ms(res.p(1)), len(res.lat), res.bad,
			float64(cpuPer)/float64(time.Microsecond), float64(runtime.NumCPU())*float64(time.Second)/float64(max(1, cpuPer)), runtime.NumCPU())
		if res.bad > 0 {
			return fmt.Errorf("%s: %d requests did not answer 200 (first: %s)", sc, res.bad, res.firstBad)
		}
	}
	return nil
}

// cpuTime is the process's user plus system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// demoStart is the first minute of the generated data: 2024-01-01T00:00Z.
const demoStart = int64(1704067200)

func startServer(kind, dir, cassHosts string, cacheBytes int64, ads, minutes int) (string, func(), error) {
	cfg := backend.Config{Backend: kind}
	var cleanup []func()
	switch kind {
	case backend.Pebble:
		if dir == "" {
			d, err := os.MkdirTemp("", "adclick-loadtest-")
			if err != nil {
				return "", nil, err
			}
			cleanup = append(cleanup, func() { os.RemoveAll(d) })
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
			return "", nil, err
		}
		cleanup = append(cleanup, func() {
			c := gocql.NewCluster(cfg.Hosts...)
			c.Timeout = 30 * time.Second
			if s, err := c.CreateSession(); err == nil {
				_ = s.Query("DROP KEYSPACE IF EXISTS " + cfg.Keyspace).Exec()
				s.Close()
			}
		})
	}
	var st store.Store
	var err error
	switch {
	case kind == "mem":
		st = memstore.New()
	case kind == backend.Pebble && cacheBytes > 0:
		// storeio has no cache option: open the store directly.
		if st, err = pebblestore.Open(dir, pebblestore.Options{CacheBytes: cacheBytes}); err != nil {
			return "", nil, err
		}
	default:
		if st, err = backend.Open(context.Background(), cfg, nil); err != nil {
			return "", nil, err
		}
	}
	start := time.Now()
	recs := demodata.Records(demodata.Spec{Start: demoStart, Minutes: minutes, Ads: ads, WindowSizes: queryapi.DefaultWindowSizes, TopN: 100})
	for i := 0; i < len(recs); i += 10000 {
		if err := st.Upsert(context.Background(), store.LiveGeneration, recs[i:min(i+10000, len(recs))]); err != nil {
			return "", nil, err
		}
	}
	fmt.Printf("data: %s store, %d ads × %d minutes, %d records written in %s\n", kind, ads, minutes, len(recs), time.Since(start).Round(time.Millisecond))
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
		st.Close()
		for _, f := range cleanup {
			f()
		}
	}, nil
}

// scenario returns a generator of request paths. Paths are built with
// appends, not fmt, to keep the generator's share of the CPU small.
func scenario(name string, ads, minutes int) (func(r *rand.Rand) string, error) {
	span := minutes - 60
	if span < 1 {
		span = 1
	}
	adIDs := make([]string, ads)
	for i := range adIDs {
		adIDs[i] = demodata.AdID(i)
	}
	switch name {
	case "count60", "count60-filter":
		filter := ""
		if name == "count60-filter" {
			filter = "&filter_id=country:US"
		}
		return func(r *rand.Rand) string {
			from := demoStart + int64(r.IntN(span))*60
			b := make([]byte, 0, 96)
			b = append(b, "/ads/"...)
			b = append(b, adIDs[r.IntN(ads)]...)
			b = append(b, "/aggregated_count?from="...)
			b = strconv.AppendInt(b, from, 10)
			b = append(b, "&to="...)
			b = strconv.AppendInt(b, from+3600, 10)
			b = append(b, filter...)
			return string(b)
		}, nil
	case "popular":
		ws := []int{1, 5, 15, 60}
		return func(r *rand.Rand) string {
			b := make([]byte, 0, 80)
			b = append(b, "/ads/popular_ads?top_n=10&window_size="...)
			b = strconv.AppendInt(b, int64(ws[r.IntN(4)]), 10)
			if r.IntN(4) != 0 { // three in four ask for a given minute
				b = append(b, "&minute="...)
				b = strconv.AppendInt(b, demoStart+int64(r.IntN(minutes))*60, 10)
			}
			return string(b)
		}, nil
	}
	return nil, fmt.Errorf("unknown scenario %q", name)
}

type result struct {
	lat      []time.Duration
	rate     float64
	bad      int
	firstBad string
}

func (r result) p(q float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(q * float64(len(r.lat)-1))
	return r.lat[i]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// requester sends one GET and reads the whole answer.
type requester interface {
	get(path string) (status int, err error)
	close()
}

func load(base, tok string, gen func(*rand.Rand) string, conns int, d time.Duration, kind string) result {
	var newReq func() requester
	switch kind {
	case "std":
		tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		newReq = func() requester {
			return &stdClient{c: client, base: base, auth: "Bearer " + tok, buf: make([]byte, 32<<10)}
		}
	default:
		host := strings.TrimPrefix(base, "http://")
		newReq = func() requester { return &rawClient{host: host, auth: "Bearer " + tok} }
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		all      []time.Duration
		bad      int
		firstBad string
	)
	deadline := time.Now().Add(d)
	start := time.Now()
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			rq := newReq()
			defer rq.close()
			r := rand.New(rand.NewPCG(seed, 7))
			lat := make([]time.Duration, 0, 1<<16)
			nbad, fb := 0, ""
			for time.Now().Before(deadline) {
				path := gen(r)
				t0 := time.Now()
				code, err := rq.get(path)
				lat = append(lat, time.Since(t0))
				if err != nil || code != 200 {
					nbad++
					if fb == "" {
						fb = fmt.Sprintf("%s: status %d, %v", path, code, err)
					}
				}
			}
			mu.Lock()
			all = append(all, lat...)
			bad += nbad
			if firstBad == "" {
				firstBad = fb
			}
			mu.Unlock()
		}(uint64(w))
	}
	wg.Wait()
	el := time.Since(start)
	slices.Sort(all)
	return result{lat: all, rate: float64(len(all)) / el.Seconds(), bad: bad, firstBad: firstBad}
}

type stdClient struct {
	c    *http.Client
	base string
	auth string
	buf  []byte
}

func (s *stdClient) get(path string) (int, error) {
	req, _ := http.NewRequest(http.MethodGet, s.base+path, nil)
	req.Header.Set("Authorization", s.auth)
	res, err := s.c.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	for {
		if _, e := res.Body.Read(s.buf); e != nil {
			if errors.Is(e, io.EOF) {
				return res.StatusCode, nil
			}
			return res.StatusCode, e
		}
	}
}

func (s *stdClient) close() {}

// rawClient speaks just enough HTTP/1.1 for this server's answers (always
// with Content-Length) over one keep-alive connection, so the generator's
// CPU goes to requests, not to a general-purpose client.
type rawClient struct {
	host, auth string
	conn       net.Conn
	br         *bufio.Reader
	wbuf       []byte
	body       []byte
}

func (c *rawClient) get(path string) (int, error) {
	if c.conn == nil {
		conn, err := net.Dial("tcp", c.host)
		if err != nil {
			return 0, err
		}
		c.conn, c.br = conn, bufio.NewReaderSize(conn, 16<<10)
	}
	b := c.wbuf[:0]
	b = append(b, "GET "...)
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, c.host...)
	b = append(b, "\r\nAuthorization: "...)
	b = append(b, c.auth...)
	b = append(b, "\r\nUser-Agent: adclick-loadtest\r\n\r\n"...)
	c.wbuf = b
	if _, err := c.conn.Write(b); err != nil {
		c.close()
		return 0, err
	}
	code, err := c.read()
	if err != nil {
		c.close()
	}
	return code, err
}

func (c *rawClient) read() (int, error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	length, closeAfter := -1, false
	for {
		h, err := c.br.ReadSlice('\n')
		if err != nil {
			return code, err
		}
		if len(h) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(h, []byte(":")); ok {
			v = bytes.TrimSpace(v)
			switch {
			case bytes.EqualFold(k, []byte("Content-Length")):
				length, _ = strconv.Atoi(string(v))
			case bytes.EqualFold(k, []byte("Connection")) && bytes.EqualFold(v, []byte("close")):
				closeAfter = true
			}
		}
	}
	if length < 0 {
		return code, errors.New("answer without Content-Length")
	}
	if cap(c.body) < length {
		c.body = make([]byte, length)
	}
	if _, err := io.ReadFull(c.br, c.body[:length]); err != nil {
		return code, err
	}
	if closeAfter {
		c.close()
	}
	return code, nil
}

func (c *rawClient) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}
