package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adclick/adclick/queryapi/metrics"
)

// metricsFlags is --metrics-addr of the long-running commands without an
// HTTP server of their own (stream, dbwriter, logwatcher); serve and the
// all-in-one serve /metrics on the API's address.
type metricsFlags struct {
	addr string
}

func (f *metricsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "metrics-addr", "", "serve Prometheus /metrics on this address only (host:port, e.g. 127.0.0.1:9101); empty = off")
}

// newRegistry is a command's registry: its own families plus the Go
// runtime's and the process's.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// serve serves g's /metrics on --metrics-addr (nothing when it is empty)
// until stop is called.
func (f *metricsFlags) serve(env *cliEnv, g prometheus.Gatherer) (stop func(), err error) {
	if f.addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			env.log.Error("metrics server", "err", err)
		}
	}()
	env.log.Info("serving metrics", "addr", ln.Addr().String())
	return func() { srv.Close() }, nil
}

// registerConsumerLag is registerGroupLag on plaintext brokers without
// authentication: the all-in-one's embedded one.
func registerConsumerLag(reg prometheus.Registerer, brokers []string, groups ...string) (close func(), err error) {
	return registerGroupLag(reg, kafkaConn{brokers: brokers}, groups...)
}

// registerGroupLag exports the lag of groups (committed offsets against end
// offsets) read through conn at each scrape. close releases the admin
// client.
func registerGroupLag(reg prometheus.Registerer, conn kafkaConn, groups ...string) (close func(), err error) {
	opts, err := conn.opts()
	if err != nil {
		return nil, fmt.Errorf("kafka admin client for the consumer lag: %w", err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka admin client for the consumer lag: %w", err)
	}
	if err := metrics.Register(reg, metrics.NewConsumerLag(metrics.GroupLags(kadm.NewClient(cl), groups...))); err != nil {
		cl.Close()
		return nil, err
	}
	return cl.Close, nil
}
