// Package cassandrastore is the production store.Store on Apache Cassandra,
// through github.com/gocql/gocql.
//
// The schema (schema.cql, embedded and applied by Migrate / `adclick
// migrate`) follows the design's data model with partitions bounded in size:
// raw clicks by ((ad_id, hour), ts, event_id) with a default TTL (30 days,
// configurable), counts by ((gen, ad_id, filter_id, day), minute), top lists
// by ((gen, window_size, day), minute). Small index tables name the
// partitions a time range has (raw_partitions, count_series, top_days), so no
// read scans the whole table.
//
// Every statement is prepared (gocql prepares and caches each statement with
// bind values on first use) and marked idempotent; requests go token-aware to
// a replica of their partition; gocql retries timeouts with exponential
// backoff; consistency is configurable (default LOCAL_QUORUM for both reads
// and writes, so a read sees every acknowledged write).
//
// Failure behaviour: a write that fails (node down, timeout, no connection)
// is retried with exponential backoff up to Options.WriteRetries times, each
// retry counted in adclick_store_retries_total; when retries run out the
// error wraps store.ErrUnavailable and is counted in
// adclick_store_failures_total. Nothing is dropped silently. A read that does
// not answer within Options.ReadTimeout fails with store.ErrUnavailable and a
// message that says it timed out.
//
// Generations live in one small partition (generations). Reads consult an
// in-process copy refreshed at most every Options.GenerationCacheTTL (default
// 1 s); NewGeneration and CommitGeneration (lightweight transactions) update
// that copy before they return, so the committing process's next read sees
// the switch, and other processes see it within the TTL.
package cassandrastore

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"text/template"
	"time"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
)

//go:embed schema.cql
var schemaCQL string

// Options configure a Store. Zero values take the defaults noted.
type Options struct {
	Hosts    []string // host or host:port; required
	Keyspace string   // default "adclick"
	// Consistency for reads and writes (e.g. "LOCAL_QUORUM", "ONE"); default
	// LOCAL_QUORUM.
	ReadConsistency, WriteConsistency string
	// RequestTimeout bounds one request to a node (default 5 s);
	// ReadTimeout one whole read call (default 10 s); ConnectTimeout the
	// initial connection (default 5 s).
	RequestTimeout, ReadTimeout, ConnectTimeout time.Duration
	// WriteRetries is how often a failed write batch is retried (default 5),
	// with exponential backoff from RetryMin (100 ms) to RetryMax (5 s).
	WriteRetries       int
	RetryMin, RetryMax time.Duration
	// RawTTL is the raw clicks' TTL written with every raw row (default 30
	// days; the table default from Migrate is the same unless changed there).
	RawTTL time.Duration
	// GenerationCacheTTL bounds how stale another process's commit may look
	// (default 1 s).
	GenerationCacheTTL time.Duration
	// WriteConcurrency bounds the batches in flight per write call (default 16).
	WriteConcurrency int
	// Registerer receives the store's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// DisableInitialHostLookup connects to Hosts only, without discovering
	// peers (for proxies and tests).
	DisableInitialHostLookup bool
}

func (o *Options) defaults() error {
	if len(o.Hosts) == 0 {
		return fmt.Errorf("%w: cassandrastore: no hosts", store.ErrInvalid)
	}
	if o.Keyspace == "" {
		o.Keyspace = "adclick"
	}
	if !validIdent(o.Keyspace) {
		return fmt.Errorf("%w: cassandrastore: keyspace %q is not a plain identifier", store.ErrInvalid, o.Keyspace)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.RequestTimeout, 5*time.Second)
	def(&o.ReadTimeout, 10*time.Second)
	def(&o.ConnectTimeout, 5*time.Second)
	def(&o.RetryMin, 100*time.Millisecond)
	def(&o.RetryMax, 5*time.Second)
	def(&o.RawTTL, 30*24*time.Hour)
	def(&o.GenerationCacheTTL, time.Second)
	if o.WriteRetries == 0 {
		o.WriteRetries = 5
	}
	if o.WriteConcurrency <= 0 {
		o.WriteConcurrency = 16
	}
	return nil
}

func validIdent(s string) bool {
	if s == "" || len(s) > 48 {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func parseCons(s string) (gocql.Consistency, error) {
	if s == "" {
		return gocql.LocalQuorum, nil
	}
	c, err := gocql.ParseConsistencyWrapper(strings.ToUpper(s))
	if err != nil {
		return 0, fmt.Errorf("%w: cassandrastore: consistency %q", store.ErrInvalid, s)
	}
	return c, nil
}

// Store is a store.Store on a Cassandra keyspace. Safe for concurrent use.
type Store struct {
	s            *gocql.Session
	o            Options
	rcons, wcons gocql.Consistency
	m            *storeMetrics

	genMu     sync.Mutex
	serving   atomic.Pointer[servingState]
	rawTTLSec int
}

type servingState struct {
	sv    *store.Serving
	gens  map[store.Generation]store.GenRange
	at    time.Time
	maxSq int64
}

var _ store.Store = (*Store)(nil)

func newCluster(o Options) *gocql.ClusterConfig {
	c := gocql.NewCluster(o.Hosts...)
	c.Timeout = o.RequestTimeout
	c.ConnectTimeout = o.ConnectTimeout
	c.RetryPolicy = &gocql.ExponentialBackoffRetryPolicy{NumRetries: 3, Min: 50 * time.Millisecond, Max: time.Second}
	c.PoolConfig.HostSelectionPolicy = gocql.TokenAwareHostPolicy(gocql.RoundRobinHostPolicy())
	c.DefaultIdempotence = true
	c.DisableInitialHostLookup = o.DisableInitialHostLookup
	c.ReconnectInterval = time.Second
	c.Logger = quietLogger{}
	return c
}

type quietLogger struct{}

func (quietLogger) Print(...interface{})          {}
func (quietLogger) Printf(string, ...interface{}) {}
func (quietLogger) Println(...interface{})        {}

// Open connects to the keyspace, which Migrate must have created.
func Open(ctx context.Context, o Options) (*Store, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	rc, err := parseCons(o.ReadConsistency)
	if err != nil {
		return nil, err
	}
	wc, err := parseCons(o.WriteConsistency)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	c := newCluster(o)
	c.Keyspace = o.Keyspace
	c.Consistency = rc
	sess, err := c.CreateSession()
	if err != nil {
		return nil, fmt.Errorf("%w: cassandrastore: connect to %v keyspace %s: %v", store.ErrUnavailable, o.Hosts, o.Keyspace, err)
	}
	s := &Store{s: sess, o: o, rcons: rc, wcons: wc, m: m, rawTTLSec: int(o.RawTTL / time.Second)}
	if _, err := s.loadGenerations(ctx); err != nil {
		sess.Close()
		return nil, err
	}
	return s, nil
}

// MigrateOptions configure Migrate.
type MigrateOptions struct {
	Hosts             []string
	Keyspace          string        // default "adclick"
	ReplicationFactor int           // default 1
	RawTTL            time.Duration // table default TTL of raw clicks; default 30 days
	ConnectTimeout    time.Duration
	// DisableInitialHostLookup as in Options.
	DisableInitialHostLookup bool
}

// Schema renders the embedded schema for a keyspace: the statements Migrate runs.
func Schema(keyspace string, rf int, rawTTL time.Duration) ([]string, error) {
	if !validIdent(keyspace) {
		return nil, fmt.Errorf("%w: keyspace %q is not a plain identifier", store.ErrInvalid, keyspace)
	}
	if rf < 1 {
		return nil, fmt.Errorf("%w: replication factor %d", store.ErrInvalid, rf)
	}
	if rawTTL < time.Second {
		return nil, fmt.Errorf("%w: raw TTL %s", store.ErrInvalid, rawTTL)
	}
	t, err := template.New("schema").Parse(schemaCQL)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, map[string]any{"Keyspace": keyspace, "ReplicationFactor": rf, "RawTTL": int64(rawTTL / time.Second)}); err != nil {
		return nil, err
	}
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(buf.String(), "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		if i := strings.Index(line, "--"); i >= 0 {
			line = line[:i]
		}
		cur.WriteString(line)
		cur.WriteString("\n")
		if strings.HasSuffix(strings.TrimSpace(line), ";") {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	return out, nil
}

// Migrate applies the embedded schema; running it again changes nothing.
func Migrate(ctx context.Context, mo MigrateOptions) error {
	if mo.Keyspace == "" {
		mo.Keyspace = "adclick"
	}
	if mo.ReplicationFactor == 0 {
		mo.ReplicationFactor = 1
	}
	if mo.RawTTL == 0 {
		mo.RawTTL = 30 * 24 * time.Hour
	}
	stmts, err := Schema(mo.Keyspace, mo.ReplicationFactor, mo.RawTTL)
	if err != nil {
		return err
	}
	o := Options{Hosts: mo.Hosts, ConnectTimeout: mo.ConnectTimeout, DisableInitialHostLookup: mo.DisableInitialHostLookup}
	if err := o.defaults(); err != nil {
		return err
	}
	c := newCluster(o)
	c.Timeout = 30 * time.Second // schema agreement can take a while
	sess, err := c.CreateSession()
	if err != nil {
		return fmt.Errorf("%w: cassandrastore: migrate: connect to %v: %v", store.ErrUnavailable, mo.Hosts, err)
	}
	defer sess.Close()
	for _, st := range stmts {
		if err := sess.Query(st).WithContext(ctx).Consistency(gocql.All).Exec(); err != nil {
			// ALL fails while a replica is down; schema changes are
			// coordinated anyway, so retry once at the default.
			if err2 := sess.Query(st).WithContext(ctx).Exec(); err2 != nil {
				return fmt.Errorf("cassandrastore: migrate: %s: %w", firstLine(st), err2)
			}
		}
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// Close closes the session.
func (s *Store) Close() error {
	s.s.Close()
	return nil
}

// Sync has nothing to do: a write returns only once the write consistency's
// replicas acknowledged it, and what survives their power cut is decided by
// the cluster (replication, commitlog_sync), not by anything a client can
// flush.
func (s *Store) Sync(ctx context.Context) error { return ctxDone(ctx) }

// Ping runs a trivial query.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.o.ReadTimeout)
	defer cancel()
	var v string
	if err := s.s.Query("SELECT release_version FROM system.local").WithContext(ctx).Consistency(gocql.One).Scan(&v); err != nil {
		return s.readErr("ping", ctx, err)
	}
	return nil
}

// ---- metrics and errors ----

type storeMetrics struct {
	retries  *prometheus.CounterVec
	failures *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*storeMetrics, error) {
	m := &storeMetrics{
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "adclick_store_retries_total", ConstLabels: prometheus.Labels{"backend": "cassandra"},
			Help: "Store write batches retried after a failure, by operation.",
		}, []string{"op"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "adclick_store_failures_total", ConstLabels: prometheus.Labels{"backend": "cassandra"},
			Help: "Store calls that failed as unavailable (after retries for writes), by operation.",
		}, []string{"op"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.retries, m.failures} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("cassandrastore: metrics: %w", err)
			}
		}
	}
	return m, nil
}

// permanent reports request errors that retrying cannot fix.
func permanent(err error) bool {
	var re gocql.RequestError
	if errors.As(err, &re) {
		switch re.Code() {
		case gocql.ErrCodeSyntax, gocql.ErrCodeInvalid, gocql.ErrCodeUnauthorized, gocql.ErrCodeConfig, gocql.ErrCodeCredentials, gocql.ErrCodeAlreadyExists:
			return true
		}
	}
	return false
}

// ctxDone fails a call whose context has ended, before it sends another
// query: the loops below send one per hour or day of a range, and must stop
// when the caller gives up rather than rely on each query failing fast.
func ctxDone(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: cassandrastore: %w", store.ErrUnavailable, err)
	}
	return nil
}

func (s *Store) readErr(op string, ctx context.Context, err error) error {
	s.m.failures.WithLabelValues(op).Inc()
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("%w: cassandrastore: %s cancelled: %w", store.ErrUnavailable, op, ctx.Err())
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, gocql.ErrTimeoutNoResponse) || ctx.Err() != nil {
		return fmt.Errorf("%w: cassandrastore: %s timed out after %s: %v", store.ErrUnavailable, op, s.o.ReadTimeout, err)
	}
	return fmt.Errorf("%w: cassandrastore: %s: %v", store.ErrUnavailable, op, err)
}

// retry runs fn until it succeeds, fails permanently, or WriteRetries retries
// with exponential backoff have failed.
func (s *Store) retry(ctx context.Context, op string, fn func(context.Context) error) error {
	backoff := s.o.RetryMin
	for attempt := 0; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if permanent(err) {
			s.m.failures.WithLabelValues(op).Inc()
			return fmt.Errorf("cassandrastore: %s: %w", op, err)
		}
		if attempt >= s.o.WriteRetries || ctx.Err() != nil {
			s.m.failures.WithLabelValues(op).Inc()
			return fmt.Errorf("%w: cassandrastore: %s failed after %d attempts: %v", store.ErrUnavailable, op, attempt+1, err)
		}
		s.m.retries.WithLabelValues(op).Inc()
		d := backoff/2 + rand.N(backoff/2+1) // jitter
		select {
		case <-ctx.Done():
			s.m.failures.WithLabelValues(op).Inc()
			return fmt.Errorf("%w: cassandrastore: %s: %v (last error: %v)", store.ErrUnavailable, op, ctx.Err(), err)
		case <-time.After(d):
		}
		backoff = min(backoff*2, s.o.RetryMax)
	}
}

// ---- batched writes ----

type stmt struct {
	cql  string
	args []any
}

// maxBatch bounds the statements of one unlogged batch (all of one partition).
const maxBatch = 100

// writeGroups writes each group (statements of one partition) as unlogged
// batches, WriteConcurrency at a time, each batch retried on failure. The
// first error wins; the remaining groups are not started.
func (s *Store) writeGroups(ctx context.Context, op string, groups [][]stmt) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, s.o.WriteConcurrency)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	fail := func(err error) {
		once.Do(func() { first = err; cancel() })
	}
	for _, g := range groups {
		for i := 0; i < len(g); i += maxBatch {
			part := g[i:min(i+maxBatch, len(g))]
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				break
			}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				err := s.retry(ctx, op, func(ctx context.Context) error {
					if len(part) == 1 {
						return s.s.Query(part[0].cql, part[0].args...).WithContext(ctx).Consistency(s.wcons).Exec()
					}
					b := s.s.NewBatch(gocql.UnloggedBatch).WithContext(ctx)
					b.SetConsistency(s.wcons)
					for _, st := range part {
						b.Query(st.cql, st.args...)
					}
					return s.s.ExecuteBatch(b)
				})
				if err != nil {
					fail(err)
				}
			}()
		}
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return fmt.Errorf("%w: cassandrastore: %s: %v", store.ErrUnavailable, op, ctx.Err())
	}
	return first
}

// ---- raw ----

func hourOf(ms int64) int64 { return floorDiv(floorDiv(ms, 1000), 3600) * 3600 }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// WriteRaw stores clicks; a click already stored is overwritten with itself.
// The partition index rows are written before the clicks they name.
func (s *Store) WriteRaw(ctx context.Context, clicks []click.Click) error {
	for i := range clicks {
		if err := store.CheckClick(&clicks[i]); err != nil {
			return err
		}
	}
	if len(clicks) == 0 {
		return nil
	}
	type pk struct {
		ad   string
		hour int64
	}
	type ck struct {
		pk
		ts int64
		id string
	}
	byPart := map[pk][]stmt{}
	seen := make(map[ck]bool, len(clicks))
	ins := "INSERT INTO raw_clicks (ad_id, hour, ts, event_id, user_id, ip, country, device, ad_format) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) USING TTL ?"
	for i := len(clicks) - 1; i >= 0; i-- { // the last write of a key wins
		c := &clicks[i]
		p := pk{c.AdID, hourOf(c.Time)}
		k := ck{p, c.Time, c.EventID}
		if seen[k] {
			continue
		}
		seen[k] = true
		byPart[p] = append(byPart[p], stmt{ins, []any{c.AdID, p.hour, c.Time, c.EventID, c.UserID, c.IP, c.Country, c.Device, c.AdFormat, s.rawTTLSec}})
	}
	index := map[any][]stmt{} // by raw_partitions partition (hour)
	groups := make([][]stmt, 0, len(byPart))
	for p, g := range byPart {
		index[p.hour] = append(index[p.hour], stmt{"INSERT INTO raw_partitions (hour, tok, ad_id) VALUES (?, ?, ?) USING TTL ?",
			[]any{p.hour, PartitionToken(p.ad, p.hour), p.ad, s.rawTTLSec + 3600}})
		groups = append(groups, g)
	}
	if err := s.writeGroups(ctx, "write_raw_index", values(index)); err != nil {
		return err
	}
	return s.writeGroups(ctx, "write_raw", groups)
}

// values lists a map's groups.
func values(m map[any][]stmt) [][]stmt {
	out := make([][]stmt, 0, len(m))
	for _, g := range m {
		out = append(out, g)
	}
	return out
}

// RawShards splits [from, to) into about n token ranges of the ring, each
// covering the whole time range; Shard.Token is the encoded TokenRange.
func (s *Store) RawShards(ctx context.Context, from, to time.Time, n int) ([]store.Shard, error) {
	if n < 1 {
		return nil, fmt.Errorf("%w: %d shards", store.ErrInvalid, n)
	}
	if to.Before(from) {
		return nil, fmt.Errorf("%w: time range ends before it starts", store.ErrInvalid)
	}
	if !from.Before(to) {
		return []store.Shard{}, nil
	}
	var out []store.Shard
	for _, r := range FullRing.Split(min(n, 1<<16)) {
		out = append(out, store.Shard{From: from, To: to, Token: r.encode()})
	}
	return out, nil
}

// ceilMS is the first whole millisecond at or after t.
func ceilMS(t time.Time) int64 {
	ms := t.UnixMilli()
	if t.Sub(time.UnixMilli(ms)) > 0 {
		ms++
	}
	return ms
}

// ReadRaw reads the shard: for every hour of its time range, the partitions
// whose token lies in its range, then their clicks in the time range.
func (s *Store) ReadRaw(ctx context.Context, shard store.Shard, fn func(click.Click) error) error {
	r, err := decodeRange(shard.Token)
	if err != nil {
		return err
	}
	lo, hi := ceilMS(shard.From), ceilMS(shard.To)
	if lo > hi {
		return fmt.Errorf("%w: shard ends before it starts", store.ErrInvalid)
	}
	for h := hourOf(lo); h*1000 < hi; h += 3600 {
		if err := ctxDone(ctx); err != nil {
			return err
		}
		var ads []string
		qctx, cancel := context.WithTimeout(ctx, s.o.ReadTimeout)
		it := s.s.Query("SELECT ad_id FROM raw_partitions WHERE hour = ? AND tok >= ? AND tok <= ?", h, r.Lo, r.Hi).
			WithContext(qctx).Consistency(s.rcons).PageSize(5000).Iter()
		var ad string
		for it.Scan(&ad) {
			ads = append(ads, ad)
		}
		err := it.Close()
		cancel()
		if err != nil {
			return s.readErr("read_raw", qctx, err)
		}
		for _, ad := range ads {
			if err := ctxDone(ctx); err != nil {
				return err
			}
			if err := s.readPartition(ctx, ad, h, max(lo, h*1000), min(hi, (h+3600)*1000), fn); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Store) readPartition(ctx context.Context, ad string, hour, lo, hi int64, fn func(click.Click) error) error {
	qctx, cancel := context.WithTimeout(ctx, s.o.ReadTimeout)
	defer cancel()
	it := s.s.Query("SELECT ts, event_id, user_id, ip, country, device, ad_format FROM raw_clicks WHERE ad_id = ? AND hour = ? AND ts >= ? AND ts < ?",
		ad, hour, lo, hi).WithContext(qctx).Consistency(s.rcons).PageSize(5000).Iter()
	c := click.Click{AdID: ad}
	for it.Scan(&c.Time, &c.EventID, &c.UserID, &c.IP, &c.Country, &c.Device, &c.AdFormat) {
		if err := fn(c); err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return s.readErr("read_raw", qctx, err)
	}
	return nil
}

// ---- aggregates ----

const day = 86400

func dayOf(minute int64) int64 { return floorDiv(minute, day) * day }

func bucketOf(ad string) int {
	h := fnv.New32a()
	h.Write([]byte(ad))
	return int(h.Sum32() % 16)
}

// Upsert writes recs into gen, overwriting by key (within one call, the last
// record of a key wins).
func (s *Store) Upsert(ctx context.Context, gen store.Generation, recs []result.Record) error {
	return s.write(ctx, gen, recs, false)
}

// Merge writes recs into gen, merging with what is stored
// (store.AggregateStore.Merge). A count is written with its value as the
// cell's write timestamp, so Cassandra's own last-write-wins keeps the
// largest whatever the order of arrival and without a read; that is also why
// one generation must not mix Upsert (wall-clock timestamps) and Merge. A top
// list is read and merged: one read per list, and lists are few.
func (s *Store) Merge(ctx context.Context, gen store.Generation, recs []result.Record) error {
	return s.write(ctx, gen, recs, true)
}

func (s *Store) write(ctx context.Context, gen store.Generation, recs []result.Record, merge bool) error {
	for _, r := range recs {
		if err := store.CheckRecord(r); err != nil {
			return err
		}
	}
	if err := s.writable(ctx, gen); err != nil {
		return err
	}
	if len(recs) == 0 {
		return nil
	}
	type cpk struct {
		ad, filter string
		day        int64
	}
	type tpk struct {
		window int
		day    int64
	}
	counts := map[cpk][]stmt{}
	tops := map[tpk][]stmt{}
	seen := make(map[string]bool, len(recs))
	g := int64(gen)
	if merge {
		var err error
		if recs, err = s.mergeTops(ctx, gen, recs); err != nil {
			return err
		}
	}
	for i := len(recs) - 1; i >= 0; i-- { // the last record of a key wins
		r := recs[i]
		k := r.Key()
		if seen[k] && !(merge && r.Top == nil) { // merged counts: every write, the timestamps decide
			continue
		}
		seen[k] = true
		var ad, filter string
		var m, n int64
		switch {
		case r.Count != nil:
			ad, m, n = r.Count.AdID, r.Count.Minute, r.Count.Count
		case r.Filtered != nil:
			ad, filter, m, n = r.Filtered.AdID, r.Filtered.FilterID, r.Filtered.Minute, r.Filtered.Count
		default:
			t := r.Top
			p := tpk{t.WindowSize, dayOf(t.Minute)}
			tops[p] = append(tops[p], stmt{"INSERT INTO tops (gen, window_size, day, minute, ads) VALUES (?, ?, ?, ?, ?)",
				[]any{g, t.WindowSize, p.day, t.Minute, store.AppendTopAds(nil, t.Ads)}})
			continue
		}
		p := cpk{ad, filter, dayOf(m)}
		if merge {
			counts[p] = append(counts[p], stmt{"INSERT INTO counts (gen, ad_id, filter_id, day, minute, count) VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?",
				[]any{g, ad, filter, p.day, m, n, n}})
		} else {
			counts[p] = append(counts[p], stmt{"INSERT INTO counts (gen, ad_id, filter_id, day, minute, count) VALUES (?, ?, ?, ?, ?, ?)",
				[]any{g, ad, filter, p.day, m, n}})
		}
	}
	// Index rows first, so every row a scan should find is named.
	type spk struct {
		day    int64
		bucket int
	}
	type dpk struct{ window int }
	index := map[any][]stmt{} // by index partition
	groups := make([][]stmt, 0, len(counts)+len(tops))
	for p, sts := range counts {
		k := spk{p.day, bucketOf(p.ad)}
		index[k] = append(index[k], stmt{"INSERT INTO count_series (gen, day, bucket, ad_id, filter_id) VALUES (?, ?, ?, ?, ?)",
			[]any{g, p.day, bucketOf(p.ad), p.ad, p.filter}})
		groups = append(groups, sts)
	}
	for p, sts := range tops {
		index[dpk{p.window}] = append(index[dpk{p.window}], stmt{"INSERT INTO top_days (gen, window_size, day) VALUES (?, ?, ?)", []any{g, p.window, p.day}})
		groups = append(groups, sts)
	}
	if err := s.writeGroups(ctx, "upsert_index", values(index)); err != nil {
		return err
	}
	return s.writeGroups(ctx, "upsert", groups)
}

// mergeTops replaces each top list of recs by its merge with the stored list
// and with the batch's earlier lists of the same key, so the last one of a
// key carries the merge.
func (s *Store) mergeTops(ctx context.Context, gen store.Generation, recs []result.Record) ([]result.Record, error) {
	type tk struct {
		w int
		m int64
	}
	merged := map[tk][]result.AdCount{}
	out := make([]result.Record, len(recs))
	for i, r := range recs {
		out[i] = r
		if r.Top == nil {
			continue
		}
		k := tk{r.Top.WindowSize, r.Top.Minute}
		prev, ok := merged[k]
		if !ok {
			rctx, cancel := context.WithTimeout(ctx, s.o.ReadTimeout)
			var blob []byte
			err := s.s.Query("SELECT ads FROM tops WHERE gen = ? AND window_size = ? AND day = ? AND minute = ?",
				int64(gen), k.w, dayOf(k.m), k.m).WithContext(rctx).Consistency(s.rcons).Scan(&blob)
			if err != nil && !errors.Is(err, gocql.ErrNotFound) {
				err = s.readErr("merge top", rctx, err)
			}
			cancel()
			switch {
			case errors.Is(err, gocql.ErrNotFound):
			case err != nil:
				return nil, err
			default:
				if prev, err = store.DecodeTopAds(blob); err != nil {
					return nil, fmt.Errorf("%w: cassandrastore: merge top: %v", store.ErrUnavailable, err)
				}
			}
		}
		ads := store.MergeTop(prev, r.Top.Ads)
		merged[k] = ads
		t := *r.Top
		t.Ads = ads
		out[i] = result.Record{Top: &t}
	}
	return out, nil
}

// Count sums adID's counts over [from, to), each minute from its serving
// generation: one partition slice per (segment, day).
func (s *Store) Count(ctx context.Context, adID, filterID string, from, to int64) (int64, error) {
	if err := store.CheckID("ad id", adID); err != nil {
		return 0, err
	}
	if len(filterID) > store.MaxIDBytes {
		return 0, fmt.Errorf("%w: filter id is %d bytes, limit %d", store.ErrInvalid, len(filterID), store.MaxIDBytes)
	}
	if err := store.CheckRange(from, to); err != nil {
		return 0, err
	}
	sv, err := s.servingNow(ctx)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.ReadTimeout)
	defer cancel()
	var total int64
	for _, seg := range sv.Segments(from, to) {
		for d := dayOf(seg.From); d < seg.To; d += day {
			if err := ctxDone(ctx); err != nil {
				return 0, err
			}
			var n int64
			err := s.s.Query("SELECT sum(count) FROM counts WHERE gen = ? AND ad_id = ? AND filter_id = ? AND day = ? AND minute >= ? AND minute < ?",
				int64(seg.Gen), adID, filterID, d, max(seg.From, d), min(seg.To, d+day)).
				WithContext(ctx).Consistency(s.rcons).Scan(&n)
			if err != nil {
				return 0, s.readErr("count", ctx, err)
			}
			total += n
		}
	}
	return total, nil
}

// Top returns the list for windowSize at minute from its serving generation.
func (s *Store) Top(ctx context.Context, windowSize int, minute int64) (result.Top, error) {
	if windowSize <= 0 || minute%60 != 0 {
		return result.Top{}, fmt.Errorf("%w: top window %d, minute %d", store.ErrInvalid, windowSize, minute)
	}
	sv, err := s.servingNow(ctx)
	if err != nil {
		return result.Top{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.ReadTimeout)
	defer cancel()
	var blob []byte
	err = s.s.Query("SELECT ads FROM tops WHERE gen = ? AND window_size = ? AND day = ? AND minute = ?",
		int64(sv.Tops().GenAt(minute)), windowSize, dayOf(minute), minute).WithContext(ctx).Consistency(s.rcons).Scan(&blob)
	if errors.Is(err, gocql.ErrNotFound) {
		return result.Top{}, fmt.Errorf("%w: no top-%d list at minute %d", store.ErrNotFound, windowSize, minute)
	}
	if err != nil {
		return result.Top{}, s.readErr("top", ctx, err)
	}
	ads, err := store.DecodeTopAds(blob)
	if err != nil {
		return result.Top{}, fmt.Errorf("%w: cassandrastore: top: %v", store.ErrUnavailable, err)
	}
	return result.Top{WindowSize: windowSize, Minute: minute, Ads: ads}, nil
}

// latestIn is the newest minute in [lo, hi) with a top list in (gen, window, day).
func (s *Store) latestIn(ctx context.Context, gen store.Generation, window int, d, lo, hi int64) (int64, bool, error) {
	var m int64
	err := s.s.Query("SELECT minute FROM tops WHERE gen = ? AND window_size = ? AND day = ? AND minute >= ? AND minute < ? LIMIT 1",
		int64(gen), window, d, lo, hi).WithContext(ctx).Consistency(s.rcons).Scan(&m)
	if errors.Is(err, gocql.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, s.readErr("latest_top_minute", ctx, err)
	}
	return m, true, nil
}

// LatestTopMinute is the newest minute whose serving generation has a top
// list for windowSize.
func (s *Store) LatestTopMinute(ctx context.Context, windowSize int) (int64, error) {
	if windowSize <= 0 {
		return 0, fmt.Errorf("%w: top window %d", store.ErrInvalid, windowSize)
	}
	sv, err := s.servingNow(ctx)
	if err != nil {
		return 0, err
	}
	sv = sv.Tops()
	ctx, cancel := context.WithTimeout(ctx, s.o.ReadTimeout)
	defer cancel()
	var best int64
	found := false
	for _, gen := range sv.Generations() {
		days, err := s.topDays(ctx, gen, windowSize)
		if err != nil {
			return 0, err
		}
		var segs []store.Segment
		if gen != store.LiveGeneration {
			segs = sv.Owned(gen)
		}
	days:
		for _, d := range days { // newest first
			if found && d+day <= best {
				break
			}
			if err := ctxDone(ctx); err != nil {
				return 0, err
			}
			if gen != store.LiveGeneration {
				for i := len(segs) - 1; i >= 0; i-- {
					lo, hi := max(segs[i].From, d), min(segs[i].To, d+day)
					if lo >= hi {
						continue
					}
					m, ok, err := s.latestIn(ctx, gen, windowSize, d, lo, hi)
					if err != nil {
						return 0, err
					}
					if ok {
						if !found || m > best {
							best, found = m, true
						}
						break days
					}
				}
				continue
			}
			hi := d + day
			for hi > d {
				m, ok, err := s.latestIn(ctx, gen, windowSize, d, d, hi)
				if err != nil {
					return 0, err
				}
				if !ok {
					break
				}
				seg, covered := sv.SegmentAt(m)
				if !covered {
					if !found || m > best {
						best, found = m, true
					}
					break days
				}
				hi = seg.From
			}
		}
	}
	if !found {
		return 0, fmt.Errorf("%w: no top-%d list", store.ErrNotFound, windowSize)
	}
	return best, nil
}

func (s *Store) topDays(ctx context.Context, gen store.Generation, window int) ([]int64, error) {
	it := s.s.Query("SELECT day FROM top_days WHERE gen = ? AND window_size = ?", int64(gen), window).
		WithContext(ctx).Consistency(s.rcons).PageSize(5000).Iter()
	var days []int64
	var d int64
	for it.Scan(&d) {
		days = append(days, d)
	}
	if err := it.Close(); err != nil {
		return nil, s.readErr("latest_top_minute", ctx, err)
	}
	return days, nil
}

// ScanCounts calls fn for every count and filtered count with a minute in
// [from, to), as served.
func (s *Store) ScanCounts(ctx context.Context, from, to int64, fn func(result.Record) error) error {
	if err := store.CheckRange(from, to); err != nil {
		return err
	}
	sv, err := s.servingNow(ctx)
	if err != nil {
		return err
	}
	type series struct{ ad, filter string }
	for _, seg := range sv.Segments(from, to) {
		for d := dayOf(seg.From); d < seg.To; d += day {
			lo, hi := max(seg.From, d), min(seg.To, d+day)
			for b := 0; b < 16; b++ {
				if err := ctxDone(ctx); err != nil {
					return err
				}
				qctx, cancel := context.WithTimeout(ctx, s.o.ReadTimeout)
				it := s.s.Query("SELECT ad_id, filter_id FROM count_series WHERE gen = ? AND day = ? AND bucket = ?", int64(seg.Gen), d, b).
					WithContext(qctx).Consistency(s.rcons).PageSize(5000).Iter()
				var list []series
				var x series
				for it.Scan(&x.ad, &x.filter) {
					list = append(list, x)
				}
				err := it.Close()
				cancel()
				if err != nil {
					return s.readErr("scan_counts", qctx, err)
				}
				for _, x := range list {
					if err := ctxDone(ctx); err != nil {
						return err
					}
					if err := s.scanSeries(ctx, seg.Gen, x.ad, x.filter, d, lo, hi, fn); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

func (s *Store) scanSeries(ctx context.Context, gen store.Generation, ad, filter string, d, lo, hi int64, fn func(result.Record) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.o.ReadTimeout)
	defer cancel()
	it := s.s.Query("SELECT minute, count FROM counts WHERE gen = ? AND ad_id = ? AND filter_id = ? AND day = ? AND minute >= ? AND minute < ?",
		int64(gen), ad, filter, d, lo, hi).WithContext(ctx).Consistency(s.rcons).PageSize(5000).Iter()
	var m, n int64
	for it.Scan(&m, &n) {
		var r result.Record
		if filter == "" {
			r.Count = &result.Count{AdID: ad, Minute: m, Count: n}
		} else {
			r.Filtered = &result.FilteredCount{AdID: ad, FilterID: filter, Minute: m, Count: n}
		}
		if err := fn(r); err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return s.readErr("scan_counts", ctx, err)
	}
	return nil
}

// ---- generations ----

// loadGenerations reads the generations partition and publishes it.
func (s *Store) loadGenerations(ctx context.Context) (*servingState, error) {
	ctx, cancel := context.WithTimeout(ctx, s.o.ReadTimeout)
	defer cancel()
	it := s.s.Query("SELECT gen, from_minute, to_minute, seq, top_to_minute FROM generations WHERE p = 0").
		WithContext(ctx).Consistency(s.rcons).Iter()
	st := &servingState{gens: map[store.Generation]store.GenRange{}, at: time.Now()}
	var g store.GenRange
	var gen int64
	// A null top_to_minute (a generation reserved before the column existed)
	// scans as 0, which GenRange reads as to_minute.
	for it.Scan(&gen, &g.From, &g.To, &g.Seq, &g.TopTo) {
		g.Gen = store.Generation(gen)
		st.gens[g.Gen] = g
		st.maxSq = max(st.maxSq, g.Seq)
	}
	if err := it.Close(); err != nil {
		return nil, s.readErr("load_generations", ctx, err)
	}
	all := make([]store.GenRange, 0, len(st.gens))
	for _, r := range st.gens {
		all = append(all, r)
	}
	st.sv = store.NewServing(all)
	s.serving.Store(st)
	return st, nil
}

// servingNow returns the serving map, refreshed if older than the cache TTL.
func (s *Store) servingNow(ctx context.Context) (*store.Serving, error) {
	if err := ctxDone(ctx); err != nil {
		return nil, err
	}
	st := s.serving.Load()
	if time.Since(st.at) < s.o.GenerationCacheTTL {
		return st.sv, nil
	}
	s.genMu.Lock()
	defer s.genMu.Unlock()
	if st = s.serving.Load(); time.Since(st.at) < s.o.GenerationCacheTTL {
		return st.sv, nil
	}
	st, err := s.loadGenerations(ctx)
	if err != nil {
		return nil, err
	}
	return st.sv, nil
}

// writable checks that gen may be written (live, or reserved by any process).
func (s *Store) writable(ctx context.Context, gen store.Generation) error {
	if gen == store.LiveGeneration {
		return nil
	}
	if gen > 0 {
		if _, ok := s.serving.Load().gens[gen]; ok {
			return nil
		}
		s.genMu.Lock()
		st, err := s.loadGenerations(ctx)
		s.genMu.Unlock()
		if err != nil {
			return err
		}
		if _, ok := st.gens[gen]; ok {
			return nil
		}
	}
	return fmt.Errorf("%w: generation %d was not reserved with NewGeneration", store.ErrInvalid, gen)
}

// NewGeneration reserves the next free generation number with a lightweight
// transaction (so concurrent recalculations in different processes get
// different numbers).
func (s *Store) NewGeneration(ctx context.Context, from, to, topTo int64) (store.Generation, error) {
	if err := store.CheckGenRange(from, to, topTo); err != nil {
		return 0, err
	}
	s.genMu.Lock()
	defer s.genMu.Unlock()
	for attempt := 0; attempt < 20; attempt++ {
		st, err := s.loadGenerations(ctx)
		if err != nil {
			return 0, err
		}
		var next store.Generation = 1
		for g := range st.gens {
			next = max(next, g+1)
		}
		applied, err := s.s.Query("INSERT INTO generations (p, gen, from_minute, to_minute, top_to_minute, seq) VALUES (0, ?, ?, ?, ?, 0) IF NOT EXISTS",
			int64(next), from, to, topTo).WithContext(ctx).Consistency(s.wcons).MapScanCAS(map[string]any{})
		if err != nil {
			s.m.failures.WithLabelValues("new_generation").Inc()
			return 0, fmt.Errorf("%w: cassandrastore: new generation: %v", store.ErrUnavailable, err)
		}
		if applied {
			s.publishLocked(st, store.GenRange{Gen: next, From: from, To: to, TopTo: topTo})
			return next, nil
		}
	}
	return 0, fmt.Errorf("%w: cassandrastore: new generation: too much contention", store.ErrUnavailable)
}

// publishLocked publishes st with g added or replaced; genMu held.
func (s *Store) publishLocked(st *servingState, g store.GenRange) {
	n := &servingState{gens: make(map[store.Generation]store.GenRange, len(st.gens)+1), at: time.Now(), maxSq: max(st.maxSq, g.Seq)}
	all := make([]store.GenRange, 0, len(st.gens)+1)
	for k, v := range st.gens {
		n.gens[k] = v
	}
	n.gens[g.Gen] = g
	for _, v := range n.gens {
		all = append(all, v)
	}
	n.sv = store.NewServing(all)
	s.serving.Store(n)
}

// CommitGeneration switches reads of gen's ranges to it. The commit sequence
// is a microsecond clock reading above every known commit, set with a
// lightweight transaction only if the generation is not committed yet.
func (s *Store) CommitGeneration(ctx context.Context, gen store.Generation) error {
	if gen <= store.LiveGeneration {
		return fmt.Errorf("%w: generation %d cannot be committed", store.ErrInvalid, gen)
	}
	s.genMu.Lock()
	defer s.genMu.Unlock()
	st, err := s.loadGenerations(ctx)
	if err != nil {
		return err
	}
	g, ok := st.gens[gen]
	if !ok {
		return fmt.Errorf("%w: generation %d", store.ErrNotFound, gen)
	}
	if g.Committed() {
		return nil
	}
	g.Seq = max(time.Now().UnixMicro(), st.maxSq+1)
	cur := map[string]any{}
	applied, err := s.s.Query("UPDATE generations SET seq = ? WHERE p = 0 AND gen = ? IF seq = 0", g.Seq, int64(gen)).
		WithContext(ctx).Consistency(s.wcons).MapScanCAS(cur)
	if err != nil {
		s.m.failures.WithLabelValues("commit_generation").Inc()
		return fmt.Errorf("%w: cassandrastore: commit generation %d: %v", store.ErrUnavailable, gen, err)
	}
	if !applied { // another process committed it first: take its sequence
		if seq, ok := cur["seq"].(int64); ok {
			g.Seq = seq
		}
	}
	s.publishLocked(st, g)
	return nil
}
