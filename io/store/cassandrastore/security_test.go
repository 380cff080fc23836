package cassandrastore_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/io/store/cassandrastore"
	"github.com/adclick/adclick/testing/testenv"
)

// TestSecurityValidate: a login needs both halves, TLS files must be
// readable and what they claim, a client certificate needs its key; errors
// wrap store.ErrInvalid and name the file.
func TestSecurityValidate(t *testing.T) {
	f := testenv.NewTLSFiles(t)
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	tlsOpts := func(o cassandrastore.TLSOptions) cassandrastore.Security { return cassandrastore.Security{TLS: o} }
	for _, tc := range []struct {
		name string
		sec  cassandrastore.Security
		want string // "" = valid
	}{
		{"anonymous plaintext", cassandrastore.Security{}, ""},
		{"login", cassandrastore.Security{Username: "u", Password: "p"}, ""},
		{"user without password", cassandrastore.Security{Username: "u"}, `user "u" has no password`},
		{"password without user", cassandrastore.Security{Password: "p"}, "without a username"},
		{"system CAs", tlsOpts(cassandrastore.TLSOptions{Enable: true}), ""},
		{"CA file", tlsOpts(cassandrastore.TLSOptions{CAFile: f.CA}), ""},
		{"missing CA file", tlsOpts(cassandrastore.TLSOptions{CAFile: missing}), missing},
		{"CA file without PEM", tlsOpts(cassandrastore.TLSOptions{CAFile: notPEM}), notPEM + " holds no PEM certificate"},
		{"client certificate", tlsOpts(cassandrastore.TLSOptions{CAFile: f.CA, CertFile: f.ClientCert, KeyFile: f.ClientKey}), ""},
		{"certificate without key", tlsOpts(cassandrastore.TLSOptions{CertFile: f.ClientCert}), "without its key file"},
		{"key without certificate", tlsOpts(cassandrastore.TLSOptions{KeyFile: f.ClientKey}), "without its certificate file"},
		{"key of another certificate", tlsOpts(cassandrastore.TLSOptions{CertFile: f.ClientCert, KeyFile: f.ServerKey}), f.ClientCert},
		{"missing key", tlsOpts(cassandrastore.TLSOptions{CertFile: f.ClientCert, KeyFile: missing}), missing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.sec.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.want == "":
			case err == nil:
				t.Fatalf("Validate accepted it; want an error saying %q", tc.want)
			case !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), tc.want):
				t.Fatalf("Validate: %v; want ErrInvalid saying %q", err, tc.want)
			}
		})
	}
}

// TestTLSConfig: TLS is on when any of its options is given, host
// verification stays on unless disabled, and the files end up in the
// configuration.
func TestTLSConfig(t *testing.T) {
	f := testenv.NewTLSFiles(t)
	if c, err := (cassandrastore.TLSOptions{}).Config(); c != nil || err != nil {
		t.Errorf("no TLS options: %v, %v; want no TLS", c, err)
	}
	c, err := cassandrastore.TLSOptions{CAFile: f.CA, CertFile: f.ClientCert, KeyFile: f.ClientKey, ServerName: "node1"}.Config()
	if err != nil || c == nil {
		t.Fatalf("Config: %v, %v", c, err)
	}
	if c.InsecureSkipVerify || c.RootCAs == nil || len(c.Certificates) != 1 || c.ServerName != "node1" {
		t.Errorf("Config = skip %v, roots %v, %d certificates, server name %q", c.InsecureSkipVerify, c.RootCAs != nil, len(c.Certificates), c.ServerName)
	}
	c, err = cassandrastore.TLSOptions{DisableHostVerification: true}.Config()
	if err != nil || c == nil || !c.InsecureSkipVerify {
		t.Errorf("DisableHostVerification alone: %+v, %v; want TLS without verification", c, err)
	}
}

// TestSecretRedacted: a password in Options printed any way fmt prints a
// struct does not appear.
func TestSecretRedacted(t *testing.T) {
	const pw = "s3cret-passw0rd"
	o := cassandrastore.Options{Hosts: []string{"h"}, Security: cassandrastore.Security{Username: "u", Password: pw}}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		if s := fmt.Sprintf(verb, o); strings.Contains(s, pw) || strings.Contains(s, fmt.Sprintf("%x", pw)) {
			t.Errorf("%s of Options shows the password: %s", verb, s)
		}
	}
	if s := fmt.Sprint(o.Password); s != "[redacted]" {
		t.Errorf("Secret prints as %q", s)
	}
}
