package main

import (
	"context"
	"net"
	"strings"
	"testing"
)

// TestPprofAddrTaken: a --pprof-addr that cannot be listened on stops
// stream and allinone alike, before they start anything.
func TestPprofAddrTaken(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	for name, args := range map[string][]string{
		"stream":   {"stream", "--kafka-brokers", "127.0.0.1:1", "--pprof-addr", addr},
		"allinone": {"allinone", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--pprof-addr", addr},
	} {
		env, _, stderr := testEnv("")
		// The command's own error, not a log line beside another failure.
		want := "adclick " + name + ": pprof listener"
		if code := run(context.Background(), args, env); code == 0 || !strings.Contains(stderr.String(), want) {
			t.Errorf("%s with a taken --pprof-addr: exit %d, stderr %q; want it to fail with %q", name, code, stderr, want)
		}
	}
}
