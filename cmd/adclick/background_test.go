package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"testing"
	"time"
)

// background is an adclick command running in this test's process as a
// server, on a free 127.0.0.1 port.
type background struct {
	base   string // http://ADDR
	errb   *syncWriter
	done   chan int
	cancel context.CancelFunc
}

// startBackground runs `adclick name --listen ADDR args...` with env (see
// serveEnv) until stop or the end of the test.
func startBackground(t *testing.T, env map[string]string, name string, args ...string) *background {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	b := &background{base: "http://" + addr, errb: &syncWriter{}, done: make(chan int, 1), cancel: cancel}
	argv := append([]string{name, "--listen", addr}, args...)
	go func() { b.done <- run(ctx, argv, serveEnv(b.errb, env)) }()
	t.Cleanup(cancel) // a test that fails before stop still ends the command
	return b
}

// waitReady waits up to 30 s for /readyz to answer 200.
func (b *background) waitReady(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if res, err := http.Get(b.base + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
	}
	b.cancel()
	t.Fatalf("never became ready: %s", b.errb.String())
}

// stop ends the command as Ctrl-C does and returns its exit code; the test
// fails if it has not stopped within 60 s.
func (b *background) stop(t *testing.T) int {
	t.Helper()
	b.cancel()
	select {
	case code := <-b.done:
		if code != 0 {
			t.Logf("stderr: %s", b.errb.String())
		}
		return code
	case <-time.After(60 * time.Second):
		t.Fatalf("did not stop within 60 s of its context ending: %s", b.errb.String())
		return -1
	}
}

// adminCall sends method path to a background server with the admin token
// the serve tests configure, decodes a JSON body into v (when not nil) and
// returns the status, or 0 when the server did not answer.
func adminCall(base, method, path string, v any) int {
	req, _ := http.NewRequest(method, base+path, nil)
	req.Header.Set("Authorization", "Bearer admin-token-0123456789")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer res.Body.Close()
	if v != nil {
		json.NewDecoder(res.Body).Decode(v)
	}
	return res.StatusCode
}
