package cassandrastore_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/io/store/cassandrastore"
)

// proxy forwards TCP to Cassandra and can cut (stop listening and drop every
// connection) or stall (keep connections, forward nothing) the link: a node
// that is down, and one that does not answer.
type proxy struct {
	t       *testing.T
	ln      net.Listener
	address string
	target  string
	mode    atomic.Int32 // 0 forward, 1 down, 2 stall
	mu      sync.Mutex
	conns   []net.Conn
	stopped atomic.Bool
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, ln: ln, address: ln.Addr().String(), target: target}
	go p.serve(ln)
	t.Cleanup(func() { p.stopped.Store(true); p.ln.Close(); p.dropAll() })
	return p
}

func (p *proxy) addr() string { return p.address }

// down refuses connections (the port is closed) and drops open ones.
func (p *proxy) down() {
	p.mode.Store(1)
	p.ln.Close()
	p.dropAll()
}

// up listens again on the same port and forwards.
func (p *proxy) up() {
	ln, err := net.Listen("tcp", p.address)
	if err != nil {
		p.t.Fatalf("proxy: listen again on %s: %v", p.address, err)
	}
	p.ln = ln
	p.mode.Store(0)
	go p.serve(ln)
}

func (p *proxy) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		if p.mode.Load() == 1 {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go p.pipe(up, c)
		go p.pipe(c, up)
	}
}

func (p *proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && p.mode.Load() == 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				dst.Close()
			}
			return
		}
	}
}

func (p *proxy) dropAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func TestFailureBehaviour(t *testing.T) {
	hosts, ks := newKeyspace(t)
	px := newProxy(t, hosts[0])
	reg := prometheus.NewRegistry()
	s := open(t, cassandrastore.Options{
		Hosts: []string{px.addr()}, Keyspace: ks, Registerer: reg, DisableInitialHostLookup: true,
		RequestTimeout: 300 * time.Millisecond, ReadTimeout: time.Second, ConnectTimeout: 300 * time.Millisecond,
		WriteRetries: 3, RetryMin: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond,
		ReadConsistency: "ONE", WriteConsistency: "ONE",
	})
	ctx := context.Background()
	rec := []result.Record{{Count: &result.Count{AdID: "f", Minute: 1800000000, Count: 1}}}
	if err := s.Upsert(ctx, 0, rec); err != nil {
		t.Fatal(err)
	}

	// Stalled node: reads time out with a clear error, writes are retried.
	px.mode.Store(2)
	start := time.Now()
	_, err := s.Count(ctx, "f", "", 1800000000, 1800000060)
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("Count on a stalled node: %v; want ErrUnavailable saying it timed out", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Count on a stalled node took %s", d)
	}
	err = s.Upsert(ctx, 0, rec)
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Upsert on a stalled node: %v; want ErrUnavailable", err)
	}

	// Node down: writes retried with backoff, counted, then ErrUnavailable.
	px.down()
	before := counter(t, reg, "adclick_store_retries_total")
	failedBefore := counter(t, reg, "adclick_store_failures_total")
	err = s.Upsert(ctx, 0, rec)
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Upsert with the node down: %v; want ErrUnavailable", err)
	}
	if got := counter(t, reg, "adclick_store_retries_total") - before; got < 3 {
		t.Errorf("retries counted while down: %v, want >= 3", got)
	}
	if got := counter(t, reg, "adclick_store_failures_total") - failedBefore; got < 1 {
		t.Errorf("failures counted while down: %v, want >= 1", got)
	}
	if err := s.WriteRaw(ctx, []click.Click{{EventID: "e", AdID: "f", Time: 1800000000000}}); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("WriteRaw with the node down: %v; want ErrUnavailable", err)
	}

	// Back up: the store recovers without being reopened.
	px.up()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := s.Upsert(ctx, 0, []result.Record{{Count: &result.Count{AdID: "f", Minute: 1800000000, Count: 5}}})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("store did not recover after the node came back: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n, err := s.Count(ctx, "f", "", 1800000000, 1800000060); err != nil || n != 5 {
		t.Errorf("Count after recovery = %d, %v; want 5", n, err)
	}
}

// counter sums a counter family over all its label values.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}
