package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/adclick/adclick/testing/testenv"
)

// The security flags are checked before anything connects: each mistake is
// a usage error naming what to fix.
func TestKafkaSecurityFlagsUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--kafka-tls-ca-file", "/nonexistent/ca.pem"}, "/nonexistent/ca.pem"}, // a CA file turns TLS on
		{[]string{"--kafka-tls", "--kafka-tls-cert-file", "c.pem"}, "give both files or neither"},
		{[]string{"--kafka-tls", "--kafka-sasl-mechanism", "GSSAPI", "--kafka-sasl-username", "u", "--kafka-sasl-password-file", "pw"}, `unknown mechanism "GSSAPI"`},
		{[]string{"--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-username", "u", "--kafka-sasl-password-file", "pw"}, "--kafka-sasl-allow-plaintext"},
		{[]string{"--kafka-tls", "--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-password-file", "pw"}, "no username"},
		{[]string{"--kafka-tls", "--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-username", "u"}, "needs a password"},
		{[]string{"--kafka-tls", "--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-username", "u", "--kafka-sasl-password-file", "/nonexistent/pw"}, "/nonexistent/pw"},
		{[]string{"--kafka-tls", "--kafka-tls-ca-file", "/nonexistent/ca.pem"}, "/nonexistent/ca.pem"},
		{[]string{"--kafka-connect-timeout", "0s"}, "--kafka-connect-timeout must be positive"},
	} {
		for _, cmd := range [][]string{{"topics"}, {"dbwriter"}, {"stream"}, {"logwatcher", "--files", "x.log", "--state", "s.json"}} {
			var errb bytes.Buffer
			args := append(append([]string{}, cmd...), tc.args...)
			if code := run(context.Background(), args, genEnv(io.Discard, &errb, nil)); code != 2 || !strings.Contains(errb.String(), tc.want) {
				t.Errorf("%v: exit %d, stderr %q; want exit 2 mentioning %q", args, code, errb.String(), tc.want)
			}
		}
	}
}

// The flags' ADCLICK_ environment forms connect as the flags do (here to an
// in-process broker that accepts only TLS and SCRAM-SHA-512); a CA file
// turns TLS on by itself, and the mechanism is case-insensitive.
func TestKafkaSecurityFromEnvironment(t *testing.T) {
	f := testenv.NewTLSFiles(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(f.ServerConfig(t, false)),
		kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "adclick", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	env := map[string]string{
		"ADCLICK_KAFKA_BROKERS": c.ListenAddrs()[0], "ADCLICK_KAFKA_TLS_CA_FILE": f.CA, // implies TLS
		"ADCLICK_KAFKA_SASL_MECHANISM": "scram-sha-512", "ADCLICK_KAFKA_SASL_USERNAME": "adclick",
		"ADCLICK_KAFKA_SASL_PASSWORD_FILE": passwordFile(t, "s3cret"),
	}
	var errb bytes.Buffer
	run(context.Background(), []string{"topics", "--verify-only", "--timeout", "10s"}, genEnv(io.Discard, &errb, env))
	if want := `msg="kafka reachable" brokers=` + c.ListenAddrs()[0] + ` security="TLS (CA ` + f.CA + `), SASL SCRAM-SHA-512 as \"adclick\""`; !strings.Contains(errb.String(), want) {
		t.Fatalf("stderr %q lacks %q", errb.String(), want)
	}
}

// With no broker listening, the long-running commands start anyway (their
// clients wait for a broker, as after a restart) and say so; topics, a
// one-shot, fails at once.
func TestKafkaUnreachableAtStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	var errb bytes.Buffer
	t0 := time.Now()
	code := run(context.Background(), []string{"topics", "--kafka-brokers", dead}, genEnv(io.Discard, &errb, nil))
	if code != 1 || !strings.Contains(errb.String(), "kafka broker "+dead+": connection refused") || time.Since(t0) > 5*time.Second {
		t.Fatalf("topics: exit %d after %v: %s", code, time.Since(t0), errb.String())
	}
	errb.Reset()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	dir := t.TempDir()
	code = run(ctx, []string{"logwatcher", "--kafka-brokers", dead, "--files", dir + "/*.log", "--state", dir + "/s.json"}, genEnv(io.Discard, &errb, nil))
	if !strings.Contains(errb.String(), "no Kafka broker answers yet; starting anyway") || !strings.Contains(errb.String(), "log watcher starting") {
		t.Fatalf("logwatcher: exit %d: %s", code, errb.String())
	}
}
