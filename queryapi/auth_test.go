package queryapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/adclick/adclick/io/store"
)

const countURL = "/ads/ad1/aggregated_count?from=2024-01-01T10:00&to=2024-01-01T10:03"

func TestAccessControl(t *testing.T) {
	ts := newTestServer(t, nil)
	tests := []struct {
		name          string
		method, path  string
		authorization string
		code          int
		errTag        string
	}{
		{"no token", "GET", countURL, "", 401, codeUnauthorized},
		{"wrong token", "GET", countURL, "Bearer not-a-valid-token-at-all", 401, codeUnauthorized},
		{"token prefix", "GET", countURL, "Bearer " + readToken[:len(readToken)-1], 401, codeUnauthorized},
		{"token plus suffix", "GET", countURL, "Bearer " + readToken + "x", 401, codeUnauthorized},
		{"basic scheme", "GET", countURL, "Basic " + readToken, 401, codeUnauthorized},
		{"empty bearer", "GET", countURL, "Bearer ", 401, codeUnauthorized},
		{"read token reads", "GET", countURL, "Bearer " + readToken, 200, ""},
		{"scheme is case-insensitive", "GET", countURL, "bearer " + readToken, 200, ""},
		{"admin token reads", "GET", "/ads/popular_ads?window_size=1", "Bearer " + adminToken, 200, ""},
		{"read token on admin route", "POST", "/admin/replay?from=2024-01-01T10:00&to=2024-01-01T11:00", "Bearer " + readToken, 403, codeForbidden},
		{"no token on admin route", "POST", "/admin/replay?from=2024-01-01T10:00&to=2024-01-01T11:00", "", 401, codeUnauthorized},
		{"admin without a replay component", "POST", "/admin/replay?from=2024-01-01T10:00&to=2024-01-01T11:00", "Bearer " + adminToken, 501, codeNotImplemented},
		{"admin status without a replay component", "GET", "/admin/replay/job-1", "Bearer " + adminToken, 501, codeNotImplemented},
		{"healthz is open", "GET", "/healthz", "", 200, ""},
		{"readyz is open", "GET", "/readyz", "", 200, ""},
		{"metrics are open", "GET", "/metrics", "", 200, ""},
		{"openapi is open", "GET", "/openapi.json", "", 200, ""},
		{"dashboard page is open", "GET", "/", "", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, tt.path, nil)
			req.RemoteAddr = "192.0.2.1:1"
			if tt.authorization != "" {
				req.Header.Set("Authorization", tt.authorization)
			}
			rec := newRecorder()
			ts.Handler().ServeHTTP(rec, req)
			if rec.Code != tt.code {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.code, rec.Body)
			}
			if tt.errTag != "" {
				r := resp{code: rec.Code, body: rec.Body.Bytes()}
				if m := r.json(t); m["error"] != tt.errTag {
					t.Fatalf("error %v, want %s", m["error"], tt.errTag)
				}
				if strings.Contains(rec.Body.String(), readToken) || strings.Contains(rec.Body.String(), adminToken) {
					t.Fatal("a secret is echoed")
				}
			}
			if tt.code == 401 && rec.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

func TestInsecureMode(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.Tokens = nil; c.Insecure = true })
	if !strings.Contains(ts.logs.String(), `"level":"WARN"`) || !strings.Contains(ts.logs.String(), "INSECURE") {
		t.Fatalf("insecure mode was not logged at WARN: %s", ts.logs.String())
	}
	if r := ts.do(t, "GET", countURL, ""); r.code != 200 {
		t.Fatalf("no token in insecure mode: %d", r.code)
	}
	if r := ts.do(t, "POST", "/admin/replay?from=2024-01-01T10:00&to=2024-01-01T11:00", ""); r.code != 501 {
		t.Fatalf("admin in insecure mode: %d", r.code)
	}
	// A token that is presented must still be valid.
	if r := ts.do(t, "GET", countURL, "bogus-token-bogus-token"); r.code != 401 {
		t.Fatalf("bad token in insecure mode: %d", r.code)
	}
}

func TestNewRefusesNoTokens(t *testing.T) {
	_, err := New(Config{Store: newTestServer(t, nil).store})
	if err == nil {
		t.Fatal("a server without tokens and without insecure mode was built")
	}
}

func TestNewRefusesBadTokens(t *testing.T) {
	st := newTestServer(t, nil).store
	for _, tok := range []Token{
		{Name: "", Role: RoleRead, Secret: readToken},
		{Name: "x", Role: 0, Secret: readToken},
		{Name: "x", Role: RoleRead, Secret: "short"},
	} {
		if _, err := New(Config{Store: st, Tokens: []Token{tok}}); err == nil {
			t.Errorf("token %+v accepted", tok)
		} else if strings.Contains(err.Error(), tok.Secret) && tok.Secret != "" {
			t.Errorf("error quotes the secret: %v", err)
		}
	}
}

func TestRateLimit(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.RateLimit = 1; c.RateBurst = 2 })
	for i := 0; i < 2; i++ {
		if r := ts.do(t, "GET", countURL, readToken); r.code != 200 {
			t.Fatalf("request %d within the burst: %d", i, r.code)
		}
	}
	r := ts.do(t, "GET", countURL, readToken)
	if r.code != 429 {
		t.Fatalf("third request: %d, want 429", r.code)
	}
	if m := r.json(t); m["error"] != codeRateLimited {
		t.Fatalf("error %v", m["error"])
	}
	if r.header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After %q, want 1", r.header.Get("Retry-After"))
	}
	// Another token has its own bucket.
	if r := ts.do(t, "GET", countURL, adminToken); r.code != 200 {
		t.Fatalf("other client: %d", r.code)
	}
	// Unauthenticated guesses are limited per address too.
	for i := 0; i < 2; i++ {
		if r := ts.do(t, "GET", countURL, "guess-guess-guess-guess"); r.code != 401 {
			t.Fatalf("guess %d: %d, want 401", i, r.code)
		}
	}
	if r := ts.do(t, "GET", countURL, "guess-guess-guess-guess"); r.code != 429 {
		t.Fatalf("third guess: %d, want 429", r.code)
	}
	// Refused requests take no tokens: after one second exactly one more
	// request passes.
	ts.now.Advance(time.Second)
	if r := ts.do(t, "GET", countURL, readToken); r.code != 200 {
		t.Fatalf("after refill: %d", r.code)
	}
	if r := ts.do(t, "GET", countURL, readToken); r.code != 429 {
		t.Fatalf("after one refill, second request: %d, want 429", r.code)
	}
	// Open endpoints are not limited.
	for i := 0; i < 5; i++ {
		if r := ts.do(t, "GET", "/healthz", ""); r.code != 200 {
			t.Fatalf("healthz: %d", r.code)
		}
	}
}

func TestLimiterForgetsIdleClients(t *testing.T) {
	clk := &fakeClock{t: time.Unix(t0, 0)}
	l := newLimiter(10, 10, clk.Now)
	for i := 0; i < 100; i++ {
		l.allow("ip:" + string(rune('a'+i)))
	}
	if len(l.buckets) != 100 {
		t.Fatalf("%d buckets, want 100", len(l.buckets))
	}
	clk.Advance(l.idle + time.Second)
	l.allow("ip:new")
	if len(l.buckets) != 1 {
		t.Fatalf("%d buckets after the idle time, want 1", len(l.buckets))
	}
}

func TestParseTokens(t *testing.T) {
	tests := []struct {
		in      string
		want    []Token
		wantErr string
	}{
		{"a:read:0123456789abcdef", []Token{{"a", RoleRead, "0123456789abcdef"}}, ""},
		{" a:read:0123456789abcdef , b:admin:xyz:with:colons:0123 ,", []Token{{"a", RoleRead, "0123456789abcdef"}, {"b", RoleAdmin, "xyz:with:colons:0123"}}, ""},
		{"", nil, ""},
		{"a:read:short", nil, "at least"},
		{"a:write:0123456789abcdef", nil, "role"},
		{"a:0123456789abcdef", nil, "name:role:token"},
		{"bad name:read:0123456789abcdef", nil, "name"},
		{"a:read:0123456789abcdef,a:admin:fedcba9876543210", nil, "twice"},
		{"a:read:0123456789abcdef,b:admin:0123456789abcdef", nil, "twice"},
	}
	for _, tt := range tests {
		got, err := ParseTokens(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: error %v, want one containing %q", tt.in, err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "0123456789abcdef") {
				t.Errorf("%q: the error quotes a secret: %v", tt.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if len(got) != len(tt.want) {
			t.Errorf("%q: %v, want %v", tt.in, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("%q: %v, want %v", tt.in, got[i], tt.want[i])
			}
		}
	}
}

func TestReadTokensFile(t *testing.T) {
	got, err := readTokens(strings.NewReader("# comment\n\nanalyst:read:0123456789abcdef\n  ops:admin:fedcba9876543210  \n"))
	if err != nil || len(got) != 2 || got[0].Name != "analyst" || got[1].Role != RoleAdmin || got[1].Secret != "fedcba9876543210" {
		t.Fatalf("%v %v", got, err)
	}
	if _, err := readTokens(strings.NewReader("ok:read:0123456789abcdef\nbroken\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("error %v, want one naming line 2", err)
	}
}

func TestTokenLookup(t *testing.T) {
	set := newTokenSet(testTokens())
	for _, tt := range []struct {
		secret string
		name   string
		ok     bool
	}{
		{readToken, "analyst", true}, {adminToken, "ops", true}, {"", "", false}, {readToken + " ", "", false}, {strings.ToUpper(readToken), "", false},
	} {
		tok, ok := set.lookup(tt.secret)
		if ok != tt.ok || tok.Name != tt.name {
			t.Errorf("lookup(%q) = %v %v, want %s %v", tt.secret, tok.Name, ok, tt.name, tt.ok)
		}
	}
}

// fakeAdmin records replay requests.
type fakeAdmin struct{ from, to int64 }

func (f *fakeAdmin) StartReplay(ctx context.Context, from, to int64) (ReplayJob, error) {
	if f.from != 0 {
		return ReplayJob{}, fmt.Errorf("job-1 still running: %w", ErrConflict)
	}
	f.from, f.to = from, to
	return ReplayJob{ID: "job-1", From: time.Unix(from, 0).UTC(), To: time.Unix(to, 0).UTC(), State: "running", Started: time.Unix(t0, 0).UTC()}, nil
}

func (f *fakeAdmin) ReplayStatus(ctx context.Context, id string) (ReplayJob, error) {
	if id != "job-1" {
		return ReplayJob{}, store.ErrNotFound
	}
	return ReplayJob{ID: id, State: "done"}, nil
}

func TestAdminHook(t *testing.T) {
	adm := &fakeAdmin{}
	ts := newTestServer(t, func(c *Config) { c.Admin = adm })
	r := ts.do(t, "POST", "/admin/replay?from=2024-01-01T10:00&to=2024-01-01T11:00", adminToken)
	if r.code != 202 {
		t.Fatalf("start: %d %s", r.code, r.body)
	}
	if adm.from != t0 || adm.to != t0+3600 {
		t.Fatalf("replay got [%d, %d)", adm.from, adm.to)
	}
	if m := r.json(t); m["id"] != "job-1" || m["from"] != "2024-01-01T10:00:00Z" || m["state"] != "running" {
		t.Fatalf("job %s", r.body)
	}
	if r := ts.do(t, "POST", "/admin/replay?from=2024-01-01T11:00&to=2024-01-01T10:00", adminToken); r.code != 400 {
		t.Fatalf("reversed range: %d", r.code)
	}
	r = ts.do(t, "POST", "/admin/replay?from=2024-01-01T12:00&to=2024-01-01T13:00", adminToken)
	if r.code != 409 || r.json(t)["error"] != codeConflict || strings.Contains(string(r.body), "job-1") {
		t.Fatalf("second replay: %d %s", r.code, r.body)
	}
	if r := ts.do(t, "GET", "/admin/replay/job-1", adminToken); r.code != 200 || r.json(t)["state"] != "done" {
		t.Fatalf("status: %d %s", r.code, r.body)
	}
	if r := ts.do(t, "GET", "/admin/replay/job-2", adminToken); r.code != 404 {
		t.Fatalf("unknown job: %d", r.code)
	}
}
