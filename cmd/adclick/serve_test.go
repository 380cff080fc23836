package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/adclick/adclick/testing/testenv"
)

func serveEnv(stderr io.Writer, env map[string]string) *cliEnv {
	return &cliEnv{stdin: strings.NewReader(""), stdout: io.Discard, stderr: stderr, getenv: func(k string) string { return env[k] }}
}

func TestServeUsageErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no tokens", []string{"serve", "--pebble-dir", dir}, "no tokens"},
		{"bad tokens", []string{"serve", "--pebble-dir", dir, "--tokens", "a:root:0123456789abcdef"}, "role"},
		{"bad store", []string{"serve", "--store", "mysql", "--insecure"}, "mysql"},
		{"cassandra without hosts", []string{"serve", "--store", "cassandra", "--insecure"}, "hosts"},
		{"bad windows", []string{"serve", "--insecure", "--window-sizes", "1,x"}, "--window-sizes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var errb bytes.Buffer
			if code := run(context.Background(), tt.args, serveEnv(&errb, nil)); code != 2 {
				t.Fatalf("exit %d, want 2: %s", code, errb.String())
			}
			if !strings.Contains(errb.String(), tt.want) {
				t.Fatalf("stderr %q lacks %q", errb.String(), tt.want)
			}
			if strings.Contains(errb.String(), "0123456789abcdef") {
				t.Fatal("a secret is printed")
			}
		})
	}
}

// TestServeRuns starts `adclick serve` on the embedded store with a token
// from the environment, checks auth and readiness, and stops it the way
// SIGTERM does.
func TestServeRuns(t *testing.T) {
	testServeRuns(t, "--pebble-dir", filepath.Join(t.TempDir(), "pebble"))
}

// TestServeCassandra is TestServeRuns on the real Cassandra testing/testenv
// starts, in a keyspace `adclick migrate` creates.
func TestServeCassandra(t *testing.T) {
	hostList, ks := testenv.CassandraKeyspace(t, "adclick_serve")
	hosts := strings.Join(hostList, ",")
	var errb syncWriter
	if code := run(context.Background(), []string{"migrate", "--cassandra-hosts", hosts, "--keyspace", ks}, serveEnv(&errb, nil)); code != 0 {
		t.Fatalf("migrate: exit %d: %s", code, errb.String())
	}
	testServeRuns(t, "--store", "cassandra", "--cassandra-hosts", hosts, "--keyspace", ks)
}

func testServeRuns(t *testing.T, storeArgs ...string) {
	srv := startBackground(t, map[string]string{"ADCLICK_TOKENS": "ci:read:ci-token-0123456789"}, "serve", storeArgs...)
	srv.waitReady(t)
	base := srv.base
	get := func(token string) int {
		req, _ := http.NewRequest("GET", base+"/ads/ad1/aggregated_count?from=2024-01-01T10:00&to=2024-01-01T11:00", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if c := get(""); c != 401 {
		t.Errorf("without token: %d", c)
	}
	if c := get("ci-token-0123456789"); c != 200 {
		t.Errorf("with the env token: %d", c)
	}
	if code := srv.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
}

func TestServeInsecureWarns(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var errb syncWriter
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--insecure", "--listen", addr, "--pebble-dir", t.TempDir()}, serveEnv(&errb, nil))
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(errb.String(), "listening") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	if !strings.Contains(errb.String(), "level=WARN") || !strings.Contains(errb.String(), "INSECURE") {
		t.Fatalf("insecure mode not logged at WARN: %s", errb.String())
	}
}

// syncWriter is a goroutine-safe buffer for the server's log.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
