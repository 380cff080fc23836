package cassandrastore

import (
	"fmt"
	"strings"
	"time"

	"github.com/gocql/gocql"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/adclick/adclick/io/store"
)

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
	// RawRetention is how long raw clicks are kept (default 30 days,
	// store.DefaultRawRetention): every raw row is written with it as its
	// TTL, which overrides the table's default (Migrate's RawTTL). A
	// collection (Collect) deletes by event time, the TTL is a backstop
	// that needs none.
	RawRetention time.Duration
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
	// Security: the login and TLS (default: anonymous, plaintext).
	Security
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
	def(&o.RawRetention, store.DefaultRawRetention)
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

// newCluster configures a cluster for o (defaulted). A connection the nodes
// refuse fails once, within ConnectTimeout per host: gocql does not retry
// the initial connection, and neither does anything here, so a wrong
// password or CA ends the start at once instead of looping.
func newCluster(o Options) (*gocql.ClusterConfig, error) {
	auth, ssl, err := o.Security.gocql()
	if err != nil {
		return nil, err
	}
	c := gocql.NewCluster(o.Hosts...)
	c.Authenticator = auth
	c.SslOpts = ssl
	c.Timeout = o.RequestTimeout
	c.ConnectTimeout = o.ConnectTimeout
	c.RetryPolicy = &gocql.ExponentialBackoffRetryPolicy{NumRetries: 3, Min: 50 * time.Millisecond, Max: time.Second}
	c.PoolConfig.HostSelectionPolicy = gocql.TokenAwareHostPolicy(gocql.RoundRobinHostPolicy())
	c.DefaultIdempotence = true
	c.DisableInitialHostLookup = o.DisableInitialHostLookup
	c.ReconnectInterval = time.Second
	c.Logger = quietLogger{}
	return c, nil
}

type quietLogger struct{}

func (quietLogger) Print(...interface{})          {}
func (quietLogger) Printf(string, ...interface{}) {}
func (quietLogger) Println(...interface{})        {}
