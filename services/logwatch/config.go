package logwatch

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/io/kafkasec"
)

// Config configures a Watcher. Zero values mean the defaults below.
type Config struct {
	// Globs name the files to tail (filepath.Glob patterns); re-evaluated every
	// PollInterval, so files that appear later are picked up.
	Globs []string
	// Brokers and Topic say where to publish.
	Brokers []string
	Topic   string
	// Security is how the client connects (TLS, SASL; kafkasec).
	Security kafkasec.Security
	// KafkaOpts are extra franz-go options, applied last.
	KafkaOpts []kgo.Opt
	// StatePath is the JSON file that keeps the acknowledged positions.
	StatePath string

	PollInterval   time.Duration // how often idle files and the globs are checked; default 200ms
	CommitInterval time.Duration // how often acknowledged positions are persisted; default 1s
	// MaxInFlight and MaxInFlightBytes bound the records sent but not yet
	// acknowledged: reading pauses at either bound. Defaults 20000 and 32 MiB.
	MaxInFlight      int
	MaxInFlightBytes int64
	// MaxLineBytes cuts longer lines (see the package doc); default and
	// minimum click.MaxLineBytes+1 rounded to 128 KiB.
	MaxLineBytes int
	// RenamedGrace is how long a file that left the globs (renamed away or
	// deleted) is kept open at its end in case the writer still appends to it
	// before reopening; default 5s.
	RenamedGrace time.Duration
	// DrainTimeout bounds the wait for acknowledgements on shutdown; lines not
	// acknowledged by then are re-sent after a restart. Default 30s.
	DrainTimeout time.Duration

	// SaltHotAds lists hot ads whose key is salted into SaltBuckets buckets.
	SaltHotAds  []string
	SaltBuckets int

	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil: metrics are not registered
}

// Defaults.
const (
	DefaultPollInterval     = 200 * time.Millisecond
	DefaultCommitInterval   = time.Second
	DefaultMaxInFlight      = 20000
	DefaultMaxInFlightBytes = 32 << 20
	DefaultMaxLineBytes     = 128 << 10
	DefaultRenamedGrace     = 5 * time.Second
	DefaultDrainTimeout     = 30 * time.Second
	readChunk               = 64 << 10
)

func (c *Config) withDefaults() (Config, error) {
	d := *c
	if len(d.Globs) == 0 {
		return d, errors.New("no files to watch: give at least one glob")
	}
	for _, g := range d.Globs {
		if _, err := filepath.Match(g, ""); err != nil {
			return d, fmt.Errorf("bad glob %q: %w", g, err)
		}
	}
	if len(d.Brokers) == 0 {
		return d, errors.New("no Kafka brokers given")
	}
	if d.Topic == "" {
		return d, errors.New("no Kafka topic given")
	}
	if d.StatePath == "" {
		return d, errors.New("no state file given")
	}
	if d.PollInterval <= 0 {
		d.PollInterval = DefaultPollInterval
	}
	if d.CommitInterval <= 0 {
		d.CommitInterval = DefaultCommitInterval
	}
	if d.MaxInFlight <= 0 {
		d.MaxInFlight = DefaultMaxInFlight
	}
	if d.MaxInFlightBytes <= 0 {
		d.MaxInFlightBytes = DefaultMaxInFlightBytes
	}
	if d.MaxLineBytes <= 0 {
		d.MaxLineBytes = DefaultMaxLineBytes
	}
	if d.MaxLineBytes <= click.MaxLineBytes {
		return d, fmt.Errorf("max line bytes %d must exceed the click limit %d, so a cut line is still rejected as too long", d.MaxLineBytes, click.MaxLineBytes)
	}
	if d.RenamedGrace <= 0 {
		d.RenamedGrace = DefaultRenamedGrace
	}
	if d.DrainTimeout <= 0 {
		d.DrainTimeout = DefaultDrainTimeout
	}
	if len(d.SaltHotAds) > 0 && d.SaltBuckets < 2 {
		return d, fmt.Errorf("salting hot ads needs at least 2 buckets, got %d", d.SaltBuckets)
	}
	if d.SaltBuckets < 0 || d.SaltBuckets > 1024 {
		return d, fmt.Errorf("salt buckets must be in 0..1024, got %d", d.SaltBuckets)
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return d, nil
}
