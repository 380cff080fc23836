// Command loadtest is a benchmarking tool, not part of the running system.
// It measures the query API's throughput and latency:
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
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
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
