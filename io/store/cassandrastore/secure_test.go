package cassandrastore_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/io/store/cassandrastore"
	"github.com/adclick/adclick/io/store/storetest"
	"github.com/adclick/adclick/testing/testenv"
)

// secure is the login and TLS of the secured test node.
func secure(n testenv.SecureNode) cassandrastore.Security {
	return cassandrastore.Security{Username: n.Username, Password: cassandrastore.Secret(n.Password),
		TLS: cassandrastore.TLSOptions{CAFile: n.CAFile}}
}

// TestSecureConformance is the store's conformance suite on the secured node
// (PasswordAuthenticator, client encryption required), logged in as an
// ordinary role over TLS with host verification, in a keyspace Migrate
// created through the same login.
func TestSecureConformance(t *testing.T) {
	n, ks := testenv.SecureCassandraKeyspace(t, "adclick_sec")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := cassandrastore.Migrate(ctx, cassandrastore.MigrateOptions{Hosts: n.Hosts, Keyspace: ks, Security: secure(n)}); err != nil {
		t.Fatal(err)
	}
	s := open(t, cassandrastore.Options{Hosts: n.Hosts, Keyspace: ks, Registerer: prometheus.NewRegistry(), Security: secure(n)})
	storetest.Run(t, func(*testing.T) store.Store { return s })
}

// TestSecureConnectFailures: every way of knocking on the secured node
// wrongly ends Open within a few seconds with one error that names the node
// and the cause, and never the password.
func TestSecureConnectFailures(t *testing.T) {
	n, ks := testenv.SecureCassandraKeyspace(t, "adclick_secfail")
	good := secure(n)
	if err := cassandrastore.Migrate(context.Background(), cassandrastore.MigrateOptions{Hosts: n.Hosts, Keyspace: ks, Security: good}); err != nil {
		t.Fatal(err)
	}
	other := testenv.NewTLSFiles(t) // a CA that signed nothing of the node's
	const wrongPassword = "not-the-password-4711"
	for _, tc := range []struct {
		name   string
		sec    func(*cassandrastore.Security)
		target error
		want   string
	}{
		{"wrong password", func(s *cassandrastore.Security) { s.Password = wrongPassword }, cassandrastore.ErrAuthentication, "wrong username or password"},
		{"unknown user", func(s *cassandrastore.Security) { s.Username = "nobody" }, cassandrastore.ErrAuthentication, `refused user "nobody"`},
		{"no login", func(s *cassandrastore.Security) { s.Username, s.Password = "", "" }, cassandrastore.ErrAuthentication, "wants a username and password"},
		{"no CA", func(s *cassandrastore.Security) { s.TLS = cassandrastore.TLSOptions{Enable: true} }, cassandrastore.ErrTLS, "not signed by a CA this client trusts (no CA file given"},
		{"unknown CA", func(s *cassandrastore.Security) { s.TLS.CAFile = other.CA }, cassandrastore.ErrTLS, "not signed by a CA this client trusts (the CAs of " + other.CA},
		{"wrong server name", func(s *cassandrastore.Security) { s.TLS.ServerName = "cassandra.example" }, cassandrastore.ErrTLS, "does not name the host"},
		{"plaintext", func(s *cassandrastore.Security) { s.TLS = cassandrastore.TLSOptions{} }, cassandrastore.ErrTLS, "closed the plaintext connection: it probably requires TLS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sec := good
			tc.sec(&sec)
			start := time.Now()
			s, err := cassandrastore.Open(context.Background(), cassandrastore.Options{Hosts: n.Hosts, Keyspace: ks, Security: sec})
			d := time.Since(start)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			msg := err.Error()
			t.Logf("after %v: %s", d.Round(time.Millisecond), msg)
			if !errors.Is(err, tc.target) || errors.Is(err, store.ErrUnavailable) {
				t.Errorf("error does not wrap %v alone: %v", tc.target, err)
			}
			if !strings.Contains(msg, tc.want) || !strings.Contains(msg, n.Hosts[0]) {
				t.Errorf("error %q does not say %q and name %s", msg, tc.want, n.Hosts[0])
			}
			if strings.Contains(msg, n.Password) || strings.Contains(msg, wrongPassword) {
				t.Errorf("error holds a password: %q", msg)
			}
			if d > 10*time.Second {
				t.Errorf("Open took %v to fail, want at most 10 s", d)
			}
		})
	}
}

// TestTLSClientOnPlainPort: a TLS client meeting a port that does not speak
// TLS (here a listener that answers with bytes that are no TLS record) fails
// at once, saying so.
func TestTLSClientOnPlainPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprint(c, "HTTP/1.0 400 Bad Request\r\n\r\n")
			c.Close()
		}
	}()
	defer func() { ln.Close(); <-done }()
	start := time.Now()
	_, err = cassandrastore.Open(context.Background(), cassandrastore.Options{Hosts: []string{ln.Addr().String()},
		DisableInitialHostLookup: true, Security: cassandrastore.Security{TLS: cassandrastore.TLSOptions{Enable: true}}})
	if !errors.Is(err, cassandrastore.ErrTLS) || !strings.Contains(err.Error(), "does not speak TLS") ||
		!strings.Contains(err.Error(), ln.Addr().String()) {
		t.Errorf("Open over TLS of a plaintext port: %v; want ErrTLS saying the node does not speak TLS, naming it", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
}
