package queryapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
)

// reqInfo is the per-request state the middleware shares: the request ID
// and, once authorize ran, the client's name for the access log. One context
// value carries both, so the chain copies the request once.
type reqInfo struct {
	id     string
	client string
}

type infoKey struct{}

// requestIDOf is the request's ID ("" outside the middleware).
func requestIDOf(ctx context.Context) string {
	if info, ok := ctx.Value(infoKey{}).(*reqInfo); ok {
		return info.id
	}
	return ""
}

// requestIDs makes request IDs: a random per-process prefix and a counter,
// unique without a syscall per request.
type requestIDs struct {
	prefix string
	seq    atomic.Uint64
}

func newRequestIDs() *requestIDs {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &requestIDs{prefix: hex.EncodeToString(b[:]) + "-"}
}

// id keeps a well-formed incoming X-Request-ID, so a proxy's ID follows the
// request, and makes one otherwise.
func (g *requestIDs) id(r *http.Request) string {
	if ids := r.Header.Values("X-Request-ID"); len(ids) == 1 && validRequestID(ids[0]) {
		return ids[0]
	}
	return g.next()
}

// next makes a fresh ID.
func (g *requestIDs) next() string {
	return g.prefix + strconv.FormatUint(g.seq.Add(1), 10)
}

// validRequestID admits 1-64 characters of [A-Za-z0-9._-]: the ID goes into
// logs and a response header, so nothing that could shape either.
func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c == '-' || c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// observe gives every request its ID (answered in X-Request-ID), records
// the HTTP metrics and writes the access log line. Route labels are chi's
// patterns, so ad ids never become label values.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &reqInfo{id: s.ids.id(r)}
		h := w.Header()
		h.Set("X-Request-ID", info.id)
		h.Set("X-Content-Type-Options", "nosniff")
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		s.metrics.inflight.Inc()
		func() {
			// Deferred: http.ErrAbortHandler passes through recoverer.
			defer s.metrics.inflight.Dec()
			next.ServeHTTP(ww, r.WithContext(context.WithValue(r.Context(), infoKey{}, info)))
		}()
		d := time.Since(start)
		status := ww.Status()
		if status == 0 {
			status = http.StatusOK
		}
		// Only registered patterns and known methods become labels: 404s and
		// 405s share one route, invented methods one method, so neither a
		// path scan nor a method scan can grow the series count.
		pattern := "unmatched"
		if rc := chi.RouteContext(r.Context()); rc != nil && s.isRoute(r.Method, rc.RoutePattern()) {
			pattern = rc.RoutePattern()
		}
		code := strconv.Itoa(status)
		method := methodLabel(r.Method)
		s.metrics.requests.WithLabelValues(pattern, method, code).Inc()
		s.metrics.duration.WithLabelValues(pattern, method, code).Observe(d.Seconds())
		if s.log.Enabled(r.Context(), slog.LevelInfo) {
			s.log.LogAttrs(r.Context(), slog.LevelInfo, "http request",
				slog.String("request_id", info.id),
				slog.String("method", r.Method),
				slog.String("route", pattern),
				slog.String("path", r.URL.Path),
				slog.Int("status", status),
				slog.Int("bytes", ww.BytesWritten()),
				slog.Duration("duration", d),
				slog.String("client", info.client),
				slog.String("remote", clientIP(r)),
			)
		}
	})
}

// isRoute reports whether method and pattern are a registered route; HEAD
// counts under the GET route that answers it (middleware.GetHead).
func (s *Server) isRoute(method, pattern string) bool {
	if method == http.MethodHead {
		method = http.MethodGet
	}
	for _, rt := range s.routes {
		if rt.method == method && rt.pattern == pattern {
			return true
		}
	}
	return false
}

// methodLabel is the method's metric label: the methods of RFC 9110 and
// PATCH as they are, anything a client invents as "other".
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// recoverer turns a handler panic into a logged 500 with no internals.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.LogAttrs(r.Context(), slog.LevelError, "handler panic",
					slog.String("request_id", requestIDOf(r.Context())),
					slog.String("panic", fmt.Sprint(v)),
					slog.String("stack", string(debug.Stack())))
				writeError(w, http.StatusInternalServerError, codeInternal, "internal error; quote the X-Request-ID header when reporting it")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// authorize admits requests whose bearer token has at least role (any request
// in insecure mode), after taking one token from the client's rate-limit
// bucket — also for requests that fail authentication, which throttles
// guessing.
func (s *Server) authorize(role Role) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			secret, hasToken := bearer(r)
			var tok Token
			valid := false
			if hasToken {
				tok, valid = s.tokens.lookup(secret)
			} else if r.Header.Get("Authorization") == "" && s.cfg.Insecure {
				tok, valid = Token{Name: "insecure", Role: RoleAdmin}, true
			}
			key := "ip:" + clientIP(r)
			if valid && hasToken {
				key = "token:" + tok.Name
			}
			info, _ := r.Context().Value(infoKey{}).(*reqInfo)
			if info != nil {
				if valid {
					info.client = tok.Name
				} else {
					info.client = "-"
				}
			}
			if ok, wait := s.limiter.allow(key); !ok {
				w.Header().Set("Retry-After", retryAfter(wait))
				writeError(w, http.StatusTooManyRequests, codeRateLimited, "too many requests from this client; slow down")
				return
			}
			// Which of two credentials would count is up to each proxy
			// on the way; refuse to pick one.
			if len(r.Header.Values("Authorization")) > 1 {
				writeError(w, http.StatusBadRequest, codeBadRequest, "send one Authorization header, not several")
				return
			}
			if !valid {
				w.Header().Set("WWW-Authenticate", `Bearer realm="adclick"`)
				detail := "a bearer token is required: Authorization: Bearer <token>"
				if hasToken {
					detail = "the bearer token is not valid"
				}
				writeError(w, http.StatusUnauthorized, codeUnauthorized, detail)
				return
			}
			if tok.Role < role {
				writeError(w, http.StatusForbidden, codeForbidden, "this token's role ("+tok.Role.String()+") may not use this route; it needs "+role.String())
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inflight prometheus.Gauge
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "adclick_http_requests_total",
			Help: "HTTP requests answered by the query API, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "adclick_http_request_duration_seconds",
			Help:    "Time to answer a query API request, by route pattern, method and status code.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method", "code"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "adclick_http_requests_in_flight",
			Help: "Query API requests being answered now.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.inflight} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("queryapi: register metrics: %w", err)
		}
	}
	return m, nil
}
