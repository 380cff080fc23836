package queryapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serveTCP runs ts on a real listener (Serve's connection layer included)
// until the test ends and returns its address.
func serveTCP(t *testing.T, ts *testServer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ts.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// rawRequest writes req as given and reads one response.
func rawRequest(t *testing.T, addr, req string) (*http.Response, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	// Written concurrently: the server may answer (and stop reading)
	// before a large request is sent.
	go func() { _, _ = io.WriteString(c, req) }()
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer to %.60q: %v", req, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		t.Fatalf("reading the body: %v", err)
	}
	return res, b
}

func wantJSONError(t *testing.T, res *http.Response, body []byte, status int, code string) {
	t.Helper()
	if res.StatusCode != status {
		t.Errorf("status %d, want %d: %s", res.StatusCode, status, body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json: %q", ct, body)
	}
	var e errorBody
	if err := json.Unmarshal(body, &e); err != nil || e.Error != code || e.Detail == "" {
		t.Errorf("body %q (%v), want error %q and a detail", body, err, code)
	}
	if !validRequestID(res.Header.Get("X-Request-ID")) {
		t.Errorf("X-Request-ID %q", res.Header.Get("X-Request-ID"))
	}
}

// TestUnparsableRequestsGetJSON: the errors net/http answers before any
// handler runs were text/plain, while the API promises JSON errors.
func TestUnparsableRequestsGetJSON(t *testing.T) {
	ts := newTestServer(t, nil)
	addr := serveTCP(t, ts)
	for _, tt := range []struct {
		name, req string
		status    int
		code      string
	}{
		{"huge header", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 1<<20) + "\r\n\r\n", 431, codeHeadersTooLarge},
		{"NUL in a header", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400, codeBadRequest},
		{"raw space in the query", "GET " + countURL + "&filter_id=country:U S HTTP/1.1\r\nHost: x\r\n\r\n", 400, codeBadRequest},
		{"no Host", "GET /healthz HTTP/1.1\r\n\r\n", 400, codeBadRequest},
		{"unknown transfer coding", "POST /admin/replay HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: bogus\r\n\r\n", 501, codeNotImplemented},
		{"unknown expectation", "GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: bogus\r\n\r\n", 417, codeBadRequest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, body := rawRequest(t, addr, tt.req)
			wantJSONError(t, res, body, tt.status, tt.code)
		})
	}
	// A well-formed request on the same layer is untouched.
	res, body := rawRequest(t, addr, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if res.StatusCode != 200 || !strings.Contains(string(body), `"ok"`) {
		t.Fatalf("healthz: %d %q", res.StatusCode, body)
	}
}

// TestTwoAuthorizationHeaders: two credentials are refused, not "first one
// wins" (a proxy on the way may pick the other).
func TestTwoAuthorizationHeaders(t *testing.T) {
	ts := newTestServer(t, nil)
	addr := serveTCP(t, ts)
	for _, pair := range [][2]string{{readToken, adminToken}, {readToken, readToken}, {readToken, "wrong-token-0123456789"}} {
		res, body := rawRequest(t, addr, "GET "+countURL+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"+
			"Authorization: Bearer "+pair[0]+"\r\nAuthorization: Bearer "+pair[1]+"\r\n\r\n")
		wantJSONError(t, res, body, 400, codeBadRequest)
	}
}

// TestClientRequestID: a client's X-Request-ID is kept only when it is 1-64
// characters of [A-Za-z0-9._-]; anything else is replaced.
func TestClientRequestID(t *testing.T) {
	ts := newTestServer(t, nil)
	send := func(ids ...string) string {
		req, _ := http.NewRequest(http.MethodGet, "/healthz", nil)
		for _, id := range ids {
			req.Header.Add("X-Request-ID", id)
		}
		rec := newRecorder()
		ts.Handler().ServeHTTP(rec, req)
		return rec.Header().Get("X-Request-ID")
	}
	for _, id := range []string{"upstream-42", "a.b_c-D", strings.Repeat("x", 64)} {
		if got := send(id); got != id {
			t.Errorf("X-Request-ID %q answered as %q, want it kept", id, got)
		}
	}
	for _, id := range []string{"with:colon", "with space", strings.Repeat("x", 65), "ünï", "a/b", "a\tb", "<script>"} {
		got := send(id)
		if got == id || !validRequestID(got) {
			t.Errorf("X-Request-ID %q answered as %q, want a fresh one", id, got)
		}
	}
	if got := send("one", "two"); got == "one" || got == "two" {
		t.Errorf("two X-Request-ID headers: kept %q", got)
	}
}
