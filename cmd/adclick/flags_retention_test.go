package main

import (
	"errors"
	"io"
	"testing"
	"time"
)

// TestRetentionFlags: the lifecycle flags take their command's defaults,
// flags or ADCLICK_ variables, and refuse values the deletion units cannot
// honour as usage errors.
func TestRetentionFlags(t *testing.T) {
	parse := func(d retentionDefaults, env map[string]string, args ...string) (retentionFlags, error) {
		fs := newFlagSet(genEnv(io.Discard, io.Discard, nil), "test")
		var r retentionFlags
		r.register(fs, d)
		return r, parseFlags(fs, genEnv(io.Discard, io.Discard, env), args)
	}
	r, err := parse(retentionDefaults{raw: 2 * time.Hour, aggregates: 48 * time.Hour}, nil)
	if err != nil || r.raw != 2*time.Hour || r.aggregates != 48*time.Hour || r.grace != time.Hour || r.interval != 10*time.Minute {
		t.Errorf("defaults: %+v, %v", r, err)
	}
	r, err = parse(serverRetention, map[string]string{"ADCLICK_STORE_RAW_RETENTION": "168h", "ADCLICK_GC_GRACE": "5m"}, "--aggregate-retention", "0", "--lifecycle-interval", "0")
	if err != nil || r.raw != 168*time.Hour || r.grace != 5*time.Minute || r.aggregates != 0 || r.interval != 0 {
		t.Errorf("flags and environment: %+v, %v", r, err)
	}
	for _, bad := range [][]string{
		{"--store-raw-retention", "30m"}, {"--store-raw-retention", "0"}, {"--aggregate-retention", "12h"},
		{"--gc-grace", "1s"}, {"--lifecycle-interval", "1s"}, {"--store-raw-retention", "soon"},
	} {
		if _, err := parse(serverRetention, nil, bad...); !errors.Is(err, errUsage) {
			t.Errorf("%v: %v, want a usage error", bad, err)
		}
	}
	if _, err := parse(serverRetention, map[string]string{"ADCLICK_AGGREGATE_RETENTION": "1h"}); !errors.Is(err, errUsage) {
		t.Errorf("ADCLICK_AGGREGATE_RETENTION=1h: %v, want a usage error", err)
	}
}
