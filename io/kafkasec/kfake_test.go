package kafkasec

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adclick/adclick/testing/testenv"
)

// fakeCluster is an in-process broker; its address is the only seed.
func fakeCluster(t *testing.T, opts ...kfake.Opt) string {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(1, "t")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

// roundTrip produces one record to a topic of one partition that holds
// nothing else and reads it back through clients built with sec.
func roundTrip(t *testing.T, broker, topic string, sec Security) {
	t.Helper()
	opts, err := sec.Opts()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(broker), kgo.DefaultProduceTopic(topic),
		kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	fs := cl.PollFetches(ctx)
	if err := fs.Err0(); err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if recs := fs.Records(); len(recs) != 1 || string(recs[0].Value) != "hello" {
		t.Fatalf("read back %d records", len(recs))
	}
}

func TestFakeBrokerTLSAndSASL(t *testing.T) {
	f := testenv.NewTLSFiles(t)
	pw := writeFile(t, "pw", "s3cret\n")
	for _, m := range Mechanisms {
		t.Run(m, func(t *testing.T) {
			broker := fakeCluster(t, kfake.TLS(f.ServerConfig(t, false)), kfake.EnableSASL(), kfake.Superuser(m, "adclick", "s3cret"))
			sec := Security{TLS: TLS{Enabled: true, CAFile: f.CA}, SASL: SASL{Mechanism: m, Username: "adclick", PasswordFile: pw}}
			if err := Probe(context.Background(), []string{broker}, sec, 10*time.Second); err != nil {
				t.Fatalf("probe: %v", err)
			}
			roundTrip(t, broker, "t", sec)
		})
	}
	t.Run("client certificate", func(t *testing.T) {
		broker := fakeCluster(t, kfake.TLS(f.ServerConfig(t, true)))
		sec := Security{TLS: TLS{Enabled: true, CAFile: f.CA, CertFile: f.ClientCert, KeyFile: f.ClientKey}}
		if err := Probe(context.Background(), []string{broker}, sec, 10*time.Second); err != nil {
			t.Fatalf("probe: %v", err)
		}
		roundTrip(t, broker, "t", sec)
	})
	t.Run("SASL over plaintext, allowed", func(t *testing.T) {
		broker := fakeCluster(t, kfake.EnableSASL(), kfake.Superuser(ScramSHA256, "adclick", "s3cret"))
		sec := Security{SASL: SASL{Mechanism: ScramSHA256, Username: "adclick", PasswordFile: pw, AllowPlaintext: true}}
		roundTrip(t, broker, "t", sec)
	})
}

// probeFails runs Probe and checks that it fails within bound with one
// message naming the broker and containing want.
func probeFails(t *testing.T, broker string, sec Security, want string, bound time.Duration) {
	t.Helper()
	start := time.Now()
	err := Probe(context.Background(), []string{broker}, sec, 10*time.Second)
	took := time.Since(start)
	if err == nil {
		t.Fatal("probe succeeded")
	}
	t.Logf("after %v: %v", took.Round(time.Millisecond), err)
	msg := err.Error()
	if !strings.Contains(msg, "kafka broker "+broker+": ") || !strings.Contains(msg, want) {
		t.Fatalf("want a message naming %s and saying %q, got %q", broker, want, msg)
	}
	if took > bound {
		t.Fatalf("took %v, more than %v", took, bound)
	}
}

// The failures kfake answers as Kafka does; a wrong password (kfake closes
// the connection, Kafka answers SASL_AUTHENTICATION_FAILED) and a TLS client
// on a plaintext port (kfake waits for the rest of a huge request, Kafka
// closes) are tested against the real broker (realbroker_test.go).
func TestFakeBrokerProbeFailures(t *testing.T) {
	f := testenv.NewTLSFiles(t)
	other := testenv.NewTLSFiles(t)
	pw := writeFile(t, "pw", "s3cret\n")
	secure := fakeCluster(t, kfake.TLS(f.ServerConfig(t, false)), kfake.EnableSASL(), kfake.Superuser(ScramSHA512, "adclick", "s3cret"))
	mtls := fakeCluster(t, kfake.TLS(f.ServerConfig(t, true)))
	sasl := SASL{Mechanism: ScramSHA512, Username: "adclick", PasswordFile: pw}
	for _, tc := range []struct {
		name   string
		broker string
		sec    Security
		want   string
	}{
		{"unknown CA", secure, Security{TLS: TLS{Enabled: true, CAFile: other.CA}, SASL: sasl}, "not signed by a CA in " + other.CA},
		{"no CA", secure, Security{TLS: TLS{Enabled: true}, SASL: sasl}, "not signed by a CA this system trusts"},
		{"wrong server name", secure, Security{TLS: TLS{Enabled: true, CAFile: f.CA, ServerName: "kafka.example"}, SASL: sasl}, "--kafka-tls-server-name"},
		{"no client certificate", mtls, Security{TLS: TLS{Enabled: true, CAFile: f.CA}}, "may require a client certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) { probeFails(t, tc.broker, tc.sec, tc.want, 5*time.Second) })
	}
	t.Run("refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		probeFails(t, addr, Security{}, "connection refused", 5*time.Second)
	})
}

// One seed answering is enough; when none does, each is named.
func TestProbeSeveralSeeds(t *testing.T) {
	good := fakeCluster(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	if err := Probe(context.Background(), []string{dead, good}, Security{}, 5*time.Second); err != nil {
		t.Fatalf("one seed answers: %v", err)
	}
	err = Probe(context.Background(), []string{dead, dead}, Security{}, 5*time.Second)
	if err == nil || strings.Count(err.Error(), "kafka broker "+dead) != 2 {
		t.Fatalf("want both seeds named, got %v", err)
	}
}

// A listener that accepts and never answers: the probe ends at its timeout,
// saying so.
func TestProbeTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	start := time.Now()
	err = Probe(context.Background(), []string{ln.Addr().String()}, Security{}, time.Second)
	if err == nil || !strings.Contains(err.Error(), "no answer") || time.Since(start) > 3*time.Second {
		t.Fatalf("after %v: %v", time.Since(start), err)
	}
}

// Unreachable tells brokers that did not answer (which a long-running
// command may wait for) from a broker that answered wrongly (which it must
// not).
func TestUnreachable(t *testing.T) {
	f := testenv.NewTLSFiles(t)
	other := testenv.NewTLSFiles(t)
	secure := fakeCluster(t, kfake.TLS(f.ServerConfig(t, false)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	ctx := context.Background()
	if err := Probe(ctx, []string{dead, dead}, Security{}, 5*time.Second); !Unreachable(err) {
		t.Errorf("refused: Unreachable(%v) = false", err)
	}
	if err := Probe(ctx, []string{secure}, Security{TLS: TLS{Enabled: true, CAFile: other.CA}}, 5*time.Second); err == nil || Unreachable(err) {
		t.Errorf("unknown CA: Unreachable(%v) = true", err)
	}
	if err := Probe(ctx, []string{dead, secure}, Security{TLS: TLS{Enabled: true, CAFile: other.CA}}, 5*time.Second); err == nil || Unreachable(err) {
		t.Errorf("one refused, one unknown CA: Unreachable(%v) = true", err)
	}
	if Unreachable(nil) {
		t.Error("Unreachable(nil)")
	}
}
