package queryapi

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Role is what a token may do. Admin includes Read.
type Role int

// Roles.
const (
	RoleRead Role = iota + 1
	RoleAdmin
)

func (r Role) String() string {
	switch r {
	case RoleRead:
		return "read"
	case RoleAdmin:
		return "admin"
	}
	return "none"
}

// MinTokenBytes is the shortest accepted token: shorter ones are guessable.
const MinTokenBytes = 16

// Token is one configured client credential.
type Token struct {
	Name   string
	Role   Role
	Secret string
}

// ParseTokens parses "name:role:token,name:role:token,..." (the --tokens flag
// and ADCLICK_TOKENS). Errors never quote a secret.
func ParseTokens(s string) ([]Token, error) {
	var out []Token
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		t, err := parseToken(part)
		if err != nil {
			return nil, fmt.Errorf("token entry %d: %w", i+1, err)
		}
		out = append(out, t)
	}
	return out, checkTokens(out)
}

// ReadTokensFile reads one "name:role:token" per line; blank lines and lines
// starting with # are ignored.
func ReadTokensFile(path string) ([]Token, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	defer f.Close()
	return readTokens(f)
}

func readTokens(r io.Reader) ([]Token, error) {
	var out []Token
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		t, err := parseToken(s)
		if err != nil {
			return nil, fmt.Errorf("tokens file line %d: %w", line, err)
		}
		out = append(out, t)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	return out, checkTokens(out)
}

func parseToken(s string) (Token, error) {
	parts := strings.SplitN(s, ":", 3)
	if len(parts) != 3 {
		return Token{}, errors.New("want name:role:token")
	}
	name, role, secret := parts[0], parts[1], parts[2]
	if name == "" || len(name) > 64 || strings.IndexFunc(name, func(r rune) bool {
		return !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) >= 0 {
		return Token{}, errors.New("name must be 1-64 characters of A-Z a-z 0-9 - _ and dots")
	}
	t := Token{Name: name, Secret: secret}
	switch role {
	case "read":
		t.Role = RoleRead
	case "admin":
		t.Role = RoleAdmin
	default:
		return Token{}, fmt.Errorf("token %q: role must be read or admin", name)
	}
	if len(secret) < MinTokenBytes {
		return Token{}, fmt.Errorf("token %q: the secret must be at least %d bytes", name, MinTokenBytes)
	}
	if strings.ContainsAny(secret, " \t,") {
		return Token{}, fmt.Errorf("token %q: the secret must not contain spaces or commas", name)
	}
	return t, nil
}

func checkTokens(ts []Token) error {
	names := map[string]bool{}
	secrets := map[string]bool{}
	for _, t := range ts {
		if names[t.Name] {
			return fmt.Errorf("token name %q is used twice", t.Name)
		}
		if secrets[t.Secret] {
			return fmt.Errorf("token %q: the same secret is configured twice", t.Name)
		}
		names[t.Name], secrets[t.Secret] = true, true
	}
	return nil
}

// tokenSet checks presented tokens in constant time: every configured token is
// compared (as SHA-256 digests, so lengths never differ), with no early exit,
// so timing tells nothing about which prefix or which token matched.
type tokenSet struct {
	digests [][sha256.Size]byte
	tokens  []Token
}

func newTokenSet(ts []Token) *tokenSet {
	s := &tokenSet{tokens: ts}
	for _, t := range ts {
		s.digests = append(s.digests, sha256.Sum256([]byte(t.Secret)))
	}
	return s
}

func (s *tokenSet) lookup(secret string) (Token, bool) {
	d := sha256.Sum256([]byte(secret))
	found := -1
	for i := range s.digests {
		if subtle.ConstantTimeCompare(d[:], s.digests[i][:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Token{}, false
	}
	return s.tokens[found], true
}

// bearer extracts the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return "", false
	}
	tok := strings.TrimSpace(h[7:])
	return tok, tok != ""
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// limiter is a token bucket per client key (token name, or IP for requests
// without a valid token). Idle buckets are dropped so a scan from many
// addresses cannot grow memory without bound.
type limiter struct {
	rate  rate.Limit
	burst int
	idle  time.Duration
	now   func() time.Time

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// maxBuckets bounds memory under an address scan; beyond it, new clients
// share one overflow bucket until idle ones are swept.
const maxBuckets = 100_000

func newLimiter(perSecond float64, burst int, now func() time.Time) *limiter {
	if perSecond <= 0 {
		return nil
	}
	if burst < 1 {
		burst = 1
	}
	// A bucket idle this long is full again; forgetting it changes nothing.
	idle := time.Duration(float64(burst)/perSecond*float64(time.Second)) + time.Minute
	return &limiter{rate: rate.Limit(perSecond), burst: burst, idle: idle, now: now, buckets: map[string]*bucket{}}
}

// allow takes one token from key's bucket. When refused it returns how long
// until a token is available.
func (l *limiter) allow(key string) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	if now.Sub(l.lastSweep) > l.idle {
		for k, b := range l.buckets {
			if now.Sub(b.seen) > l.idle {
				delete(l.buckets, k)
			}
		}
		l.lastSweep = now
	}
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			key = "\x00overflow"
			b = l.buckets[key]
		}
		if b == nil {
			b = &bucket{lim: rate.NewLimiter(l.rate, l.burst)}
			l.buckets[key] = b
		}
	}
	b.seen = now
	r := b.lim.ReserveN(now, 1)
	d := r.DelayFrom(now)
	if d > 0 {
		r.CancelAt(now)
		l.mu.Unlock()
		return false, d
	}
	l.mu.Unlock()
	return true, 0
}

func retryAfter(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10)
}
