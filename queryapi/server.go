// Package queryapi is adclick's query service (docs/spec.md §3): the REST API that
// advertisers and the dashboard read, served from the aggregation store, with
// bearer-token access control, per-client rate limiting, Prometheus metrics,
// an OpenAPI 3 document and the embedded dashboard page.
//
// Routes:
//
//	GET  /ads/{ad_id}/aggregated_count  read role
//	GET  /ads/popular_ads               read role
//	POST /admin/replay                  admin role (501 unless an Admin is configured)
//	GET  /admin/replay/{id}             admin role (501 unless an Admin is configured)
//	GET  /admin/ads/{ad_id}/clicks      admin role (501 unless Clicks is configured)
//	GET  /  /openapi.json  /healthz  /readyz  /metrics   no authentication
//
// The unauthenticated routes serve no aggregate data: the dashboard page is
// static and asks the API with the token its user types in.
package queryapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/queryapi/metrics"
)

// Reader is the part of the aggregation store the query API uses; every
// store.Store is one.
type Reader interface {
	Count(ctx context.Context, adID, filterID string, from, to int64) (int64, error)
	Top(ctx context.Context, windowSize int, minute int64) (result.Top, error)
	LatestTopMinute(ctx context.Context, windowSize int) (int64, error)
	Ping(ctx context.Context) error
}

// Config configures a Server. Zero values take the documented defaults.
type Config struct {
	Store  Reader       // required
	Logger *slog.Logger // nil: discard
	// Registerer receives the HTTP metrics; Gatherer is what /metrics
	// serves. A *prometheus.Registry serves as both; when both are nil a
	// private registry is used.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer

	WindowSizes  []int         // configured top-N window sizes; default 1, 5, 15, 60
	TopN         int           // N of the stored top lists; default 100
	MaxRange     time.Duration // longest aggregated_count range; default 31 days
	QueryTimeout time.Duration // per store call; default 5 s

	Tokens   []Token // bearer tokens; required unless Insecure
	Insecure bool    // no authentication at all: the all-in-one only
	// RateLimit is requests per second per client (token, or IP without
	// one); RateBurst the bucket size. Default 100/s, burst 200; negative
	// RateLimit disables limiting.
	RateLimit float64
	RateBurst int

	Admin  Admin  // optional: nil answers admin routes 501
	Clicks Clicks // optional: nil answers /admin/ads/{ad_id}/clicks 501

	ShutdownTimeout time.Duration // graceful drain on context end; default 10 s
	Now             func() time.Time
}

// Defaults.
var (
	DefaultWindowSizes = []int{1, 5, 15, 60}
)

const (
	DefaultTopN         = 100
	DefaultMaxRange     = 31 * 24 * time.Hour
	DefaultQueryTimeout = 5 * time.Second
	DefaultRateLimit    = 100
	DefaultRateBurst    = 200
)

// Server is the query service. Build it with New.
type Server struct {
	cfg     Config
	log     *slog.Logger
	mux     *chi.Mux
	handler http.Handler
	ids     *requestIDs
	routes  []route
	tokens  *tokenSet
	limiter *limiter
	windows map[int]bool
	metrics *httpMetrics
	gather  prometheus.Gatherer
	dashCSP string
}

// param is one query parameter a route takes.
type param struct {
	name     string
	required bool
}

// route is one registered route; the OpenAPI test compares these with the
// document and with chi's own table.
type route struct {
	method, pattern string
	query           []param
	role            Role // 0: no authentication
}

// New checks cfg and builds the server.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("queryapi: a store is required")
	}
	cfg.setDefaults()
	windows, err := cfg.check()
	if err != nil {
		return nil, err
	}
	reg, gat := cfg.registries()
	m, err := newHTTPMetrics(reg)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		tokens:  newTokenSet(cfg.Tokens),
		limiter: newLimiter(cfg.RateLimit, cfg.RateBurst, cfg.Now),
		windows: windows,
		metrics: m,
		ids:     newRequestIDs(),
		gather:  gat,
		dashCSP: dashboardCSP(),
	}
	// End-to-end freshness: what a client of this API can read is as old as
	// the newest stored minute.
	if err := reg.Register(metrics.NewFreshness(s.newestMinute, cfg.Now)); err != nil {
		return nil, fmt.Errorf("queryapi: register metrics: %w", err)
	}
	if cfg.Insecure {
		s.log.Warn("INSECURE MODE: authentication is OFF — anyone who can reach this server may read every count and start admin operations; use it only for the local all-in-one",
			"insecure", true)
	}
	s.build()
	return s, nil
}

// setDefaults fills the zero values with the documented defaults.
func (cfg *Config) setDefaults() {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if len(cfg.WindowSizes) == 0 {
		cfg.WindowSizes = DefaultWindowSizes
	}
	if cfg.TopN == 0 {
		cfg.TopN = DefaultTopN
	}
	if cfg.MaxRange == 0 {
		cfg.MaxRange = DefaultMaxRange
	}
	if cfg.QueryTimeout == 0 {
		cfg.QueryTimeout = DefaultQueryTimeout
	}
	if cfg.RateLimit == 0 {
		cfg.RateLimit = DefaultRateLimit
	}
	if cfg.RateBurst == 0 {
		cfg.RateBurst = DefaultRateBurst
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
}

// check reports a configuration that cannot serve and returns the set of
// window sizes.
func (cfg *Config) check() (map[int]bool, error) {
	if cfg.TopN < 1 {
		return nil, fmt.Errorf("queryapi: top-n %d must be positive", cfg.TopN)
	}
	if cfg.MaxRange < time.Minute {
		return nil, fmt.Errorf("queryapi: max range %v is under a minute", cfg.MaxRange)
	}
	if cfg.QueryTimeout < 0 {
		return nil, fmt.Errorf("queryapi: query timeout %v is negative", cfg.QueryTimeout)
	}
	windows := map[int]bool{}
	for _, w := range cfg.WindowSizes {
		if w < 1 || w > 100_000 {
			return nil, fmt.Errorf("queryapi: window size %d out of range", w)
		}
		windows[w] = true
	}
	if !cfg.Insecure && len(cfg.Tokens) == 0 {
		return nil, errors.New("queryapi: no tokens configured: give tokens, or insecure mode for the all-in-one")
	}
	for _, t := range cfg.Tokens {
		if t.Name == "" || (t.Role != RoleRead && t.Role != RoleAdmin) || len(t.Secret) < MinTokenBytes {
			return nil, fmt.Errorf("queryapi: token %q needs a name, role read or admin and a secret of at least %d bytes", t.Name, MinTokenBytes)
		}
	}
	if err := checkTokens(cfg.Tokens); err != nil {
		return nil, fmt.Errorf("queryapi: %w", err)
	}
	return windows, nil
}

// registries are where the server's metrics go and what /metrics serves.
func (cfg *Config) registries() (prometheus.Registerer, prometheus.Gatherer) {
	reg, gat := cfg.Registerer, cfg.Gatherer
	if reg == nil && gat == nil {
		r := prometheus.NewRegistry()
		return r, r
	}
	if gat == nil {
		if g, ok := reg.(prometheus.Gatherer); ok {
			gat = g
		} else {
			gat = prometheus.NewRegistry()
		}
	}
	if reg == nil {
		reg = prometheus.NewRegistry() // metrics kept but not served
	}
	return reg, gat
}

// newestMinute is the start of the newest minute with stored results: the
// end of the newest list of the smallest window, less that window's other
// minutes (see defaultTopMinute).
func (s *Server) newestMinute(ctx context.Context) (int64, error) {
	w := slices.Min(s.cfg.WindowSizes)
	latest, err := s.cfg.Store.LatestTopMinute(ctx, w)
	if err != nil {
		return 0, err
	}
	return latest - int64(w-1)*60, nil
}

// Handler is the server's HTTP handler (all middleware included).
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) build() {
	mx := chi.NewMux()
	s.mux = mx
	// GetHead: HEAD is answered by the GET handler (net/http drops the body),
	// as HTTP requires of every GET resource.
	mx.Use(s.observe, s.recoverer, middleware.GetHead,
		middleware.Compress(5, "application/json", "text/html", "text/plain", "image/svg+xml"))
	mx.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, codeNotFound, "no such route: see /openapi.json")
	})
	mx.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", strings.Join(s.allowed(r), ", "))
		writeError(w, http.StatusMethodNotAllowed, codeMethodNotAllowed, "method "+r.Method+" is not allowed on this route")
	})

	timeRange := []param{{"from", true}, {"to", true}}
	s.handle(mx, http.MethodGet, "/", nil, 0, s.dashboard)
	s.handle(mx, http.MethodGet, "/openapi.json", nil, 0, s.openAPI)
	s.handle(mx, http.MethodGet, "/healthz", nil, 0, s.healthz)
	s.handle(mx, http.MethodGet, "/readyz", nil, 0, s.readyz)
	promH := promhttp.HandlerFor(s.gather, promhttp.HandlerOpts{DisableCompression: true, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)})
	s.handle(mx, http.MethodGet, "/metrics", nil, 0, func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
		promH.ServeHTTP(w, r)
	})
	mx.Group(func(r chi.Router) {
		r.Use(s.authorize(RoleRead))
		s.handle(r, http.MethodGet, "/ads/{ad_id}/aggregated_count", append(timeRange, param{"filter_id", false}, param{"with_digest", false}), RoleRead, s.aggregatedCount)
		s.handle(r, http.MethodGet, "/ads/popular_ads", []param{{"window_size", true}, {"top_n", false}, {"minute", false}}, RoleRead, s.popularAds)
	})
	mx.Group(func(r chi.Router) {
		r.Use(s.authorize(RoleAdmin))
		s.handle(r, http.MethodPost, "/admin/replay", timeRange, RoleAdmin, s.startReplay)
		s.handle(r, http.MethodGet, "/admin/replay/{id}", nil, RoleAdmin, s.replayStatus)
		s.handle(r, http.MethodGet, "/admin/ads/{ad_id}/clicks", append(timeRange, param{"filter_id", false}, param{"page_token", false}, param{"limit", false}), RoleAdmin, s.clicks)
	})
	s.handler = mx
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, query map[string]string)

// handle registers a route whose query string is checked against the
// declared parameters before h runs.
func (s *Server) handle(r chi.Router, method, pattern string, query []param, role Role, h handlerFunc) {
	s.routes = append(s.routes, route{method: method, pattern: pattern, query: query, role: role})
	r.Method(method, pattern, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		q, err := queryParams(req.URL.RawQuery, query)
		if err != nil {
			s.fail(w, req, err)
			return
		}
		h(w, req, q)
	}))
}

// allowed lists the methods that route r's path, for a 405's Allow header.
func (s *Server) allowed(r *http.Request) []string {
	var out []string
	path := r.URL.RawPath
	if path == "" {
		path = r.URL.Path
	}
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if s.mux.Match(chi.NewRouteContext(), m, path) {
			out = append(out, m)
			if m == http.MethodGet {
				out = append(out, http.MethodHead)
			}
		}
	}
	return out
}

// pathParam returns a path parameter decoded: chi matches on the escaped
// path when there is one, so "a%2Fb" arrives escaped.
func pathParam(r *http.Request, name string) (string, error) {
	v := chi.URLParam(r, name)
	if r.URL.RawPath == "" {
		return v, nil
	}
	u, err := url.PathUnescape(v)
	if err != nil {
		return "", badParam("%s is not a valid path segment", name)
	}
	return u, nil
}

// fail answers an error: client errors with their detail, everything else
// with a generic text, logging the cause under the request ID.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var pe *paramError
	switch {
	case errors.As(err, &pe):
		writeError(w, http.StatusBadRequest, codeInvalid, pe.detail)
	case errors.Is(err, ErrConflict):
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "request conflicts with work in progress", slog.String("request_id", requestIDOf(r.Context())), slog.Any("err", err))
		writeError(w, http.StatusConflict, codeConflict, "conflicts with an operation in progress; retry when it has finished")
	case errors.Is(err, store.ErrInvalid):
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "store refused request", slog.String("request_id", requestIDOf(r.Context())), slog.Any("err", err))
		writeError(w, http.StatusBadRequest, codeInvalid, "the request was refused as invalid")
	case r.Context().Err() != nil:
		// The client went away (or the server is shutting down): nobody
		// reads this answer, and it says nothing about the store.
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "request abandoned", slog.String("request_id", requestIDOf(r.Context())), slog.Any("err", err))
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, "the request was cancelled")
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "store unavailable", slog.String("request_id", requestIDOf(r.Context())), slog.Any("err", err))
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, "the data store is unavailable; retry later")
	default:
		s.log.LogAttrs(r.Context(), slog.LevelError, "request failed", slog.String("request_id", requestIDOf(r.Context())), slog.Any("err", err))
		writeError(w, http.StatusInternalServerError, codeInternal, "internal error; quote the X-Request-ID header when reporting it")
	}
}

type countResponse struct {
	AdID     string `json:"ad_id"`
	FilterID string `json:"filter_id,omitempty"`
	From     string `json:"from"`
	To       string `json:"to"`
	Count    int64  `json:"count"`
	// Digest is set when the request asked with_digest=true.
	Digest *result.Digest `json:"digest,omitempty"`
}

func (s *Server) aggregatedCount(w http.ResponseWriter, r *http.Request, q map[string]string) {
	adID, err := pathParam(r, "ad_id")
	if err == nil {
		err = checkID("ad_id", adID)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	from, err := parseMinute("from", q["from"])
	if err != nil {
		s.fail(w, r, err)
		return
	}
	to, err := parseMinute("to", q["to"])
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if from >= to {
		s.fail(w, r, badParam("from must be before to (the range is [from, to))"))
		return
	}
	// Compared in seconds: multiplying the range into a time.Duration
	// overflows past ~292 years and let any range through.
	if to-from > int64(s.cfg.MaxRange/time.Second) {
		s.fail(w, r, badParam("the range is %d minutes; at most %d allowed", (to-from)/60, int64(s.cfg.MaxRange/time.Minute)))
		return
	}
	filter, has := q["filter_id"]
	if has {
		if filter, err = parseFilterID(filter); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	withDigest, err := parseBool("with_digest", q["with_digest"])
	if err != nil {
		s.fail(w, r, err)
		return
	}
	resp := countResponse{AdID: adID, FilterID: filter, From: result.FormatMinute(from), To: result.FormatMinute(to)}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.QueryTimeout)
	if withDigest {
		resp.Count, resp.Digest, err = s.countDigest(ctx, adID, filter, from, to)
	} else {
		resp.Count, err = s.cfg.Store.Count(ctx, adID, filter, from, to)
	}
	cancel()
	if errors.Is(err, errNoDigests) {
		writeError(w, http.StatusNotImplemented, codeNotImplemented, "this store keeps no digests")
		return
	}
	if err != nil {
		s.fail(w, r, fmt.Errorf("count %q %q [%d, %d): %w", adID, filter, from, to, err))
		return
	}
	writeFast(w, resp)
}

type popularResponse struct {
	WindowSize int              `json:"window_size"`
	Minute     string           `json:"minute"`
	Ads        []result.AdCount `json:"ads"`
}

func (s *Server) popularAds(w http.ResponseWriter, r *http.Request, q map[string]string) {
	ws, err := parseSmallInt("window_size", q["window_size"])
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !s.windows[ws] {
		s.fail(w, r, badParam("window_size %d is not configured: use one of %s", ws, s.windowList()))
		return
	}
	topN := s.cfg.TopN
	if v, ok := q["top_n"]; ok {
		if topN, err = parseSmallInt("top_n", v); err != nil {
			s.fail(w, r, err)
			return
		}
		if topN < 1 || topN > s.cfg.TopN {
			s.fail(w, r, badParam("top_n must be between 1 and %d", s.cfg.TopN))
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.QueryTimeout)
	defer cancel()
	var minute int64
	if v, ok := q["minute"]; ok {
		if minute, err = parseMinute("minute", v); err != nil {
			s.fail(w, r, err)
			return
		}
	} else {
		latest, err := s.cfg.Store.LatestTopMinute(ctx, ws)
		if errors.Is(err, store.ErrNotFound) {
			writeError(w, http.StatusNotFound, codeNotFound, fmt.Sprintf("no top list is stored yet for window_size %d", ws))
			return
		}
		if err != nil {
			s.fail(w, r, fmt.Errorf("latest top minute %d: %w", ws, err))
			return
		}
		minute = defaultTopMinute(latest, ws, s.cfg.Now())
	}
	top, err := s.cfg.Store.Top(ctx, ws, minute)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, fmt.Errorf("top %d at %d: %w", ws, minute, err))
		return
	}
	// No stored list means no click in the window: an empty top list.
	ads := top.Ads
	if len(ads) > topN {
		ads = ads[:topN]
	}
	if ads == nil {
		ads = []result.AdCount{}
	}
	writeFast(w, popularResponse{WindowSize: ws, Minute: result.FormatMinute(minute), Ads: ads})
}

// defaultTopMinute is the minute popular_ads answers without `minute`: the
// window that ends at the newest minute with data, never later than now.
//
// The newest stored list is not that window: the pipeline writes a list for
// every minute whose window holds a click (docs/spec.md §4), so a click in minute D
// makes lists up to D+W-1, and the newest W-minute list ends W-1 minutes
// after the newest data — in the future while clicks arrive (before this rule "the
// last hour" at 09:03 answered the window ending 10:02, which held one
// minute of data). The newest data minute is therefore the newest list's
// minute minus W-1. A click stamped ahead of the clock would still push that
// past now; the cap keeps the answer a window that has ended or is ending.
func defaultTopMinute(latest int64, windowSize int, now time.Time) int64 {
	m := latest - int64(windowSize-1)*60
	if nowMinute := now.Unix() - now.Unix()%60; m > nowMinute {
		m = nowMinute
	}
	return m
}

func (s *Server) windowList() string {
	ws := make([]int, 0, len(s.windows))
	for w := range s.windows {
		ws = append(ws, w)
	}
	sort.Ints(ws)
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = strconv.Itoa(w)
	}
	return strings.Join(parts, ", ")
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.cfg.Store.Ping(ctx); err != nil {
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "readiness: store ping failed", slog.String("request_id", requestIDOf(r.Context())), slog.Any("err", err))
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, "the data store is not reachable")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// Serve serves on ln until ctx ends, then drains in-flight requests for up to
// the configured shutdown timeout.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      s.cfg.QueryTimeout + 10*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(jsonErrorListener{Listener: ln, s: s}) }()
	s.log.Info("query API listening", "addr", ln.Addr().String(), "insecure", s.cfg.Insecure, "tokens", len(s.cfg.Tokens))
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && s.cfg.Insecure && !tcp.IP.IsLoopback() {
		s.log.Warn("INSECURE MODE on a non-loopback address: every count and admin operation is open to the network", "addr", tcp.String())
	}
	select {
	case err := <-errc:
		return fmt.Errorf("queryapi: serve: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("query API shutting down", "grace", s.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) && e != nil {
		return fmt.Errorf("queryapi: serve: %w", e)
	}
	if err != nil {
		return fmt.Errorf("queryapi: shutdown: %w", err)
	}
	return nil
}

// ListenAndServe listens on addr (host:port) and serves until ctx ends.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("queryapi: %w", err)
	}
	return s.Serve(ctx, ln)
}
