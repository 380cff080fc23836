package cassandrastore

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/gocql/gocql"

	"github.com/adclick/adclick/io/store"
)

// Security is how a client proves itself to the nodes (a login role) and
// protects the connection (TLS). The zero value is an anonymous plaintext
// client, what a cluster with AllowAllAuthenticator and no client encryption
// accepts.
type Security struct {
	// Username and Password log in with gocql's PasswordAuthenticator (the
	// nodes' PasswordAuthenticator). Both or neither.
	Username string
	Password Secret
	TLS      TLSOptions
}

// TLSOptions configure TLS on the CQL connections.
type TLSOptions struct {
	// Enable turns TLS on; so does any other field set, so that a CA file
	// is never given and then silently unused.
	Enable bool
	// CAFile is a PEM file of the CAs that signed the nodes' certificates
	// (empty: the system's trust store).
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// nodes that require client authentication. Both or neither.
	CertFile, KeyFile string
	// ServerName is the name the nodes' certificates must carry (empty: the
	// host each connection dials, as given or as discovered).
	ServerName string
	// DisableHostVerification accepts any certificate from anyone: it
	// leaves the connection open to an impostor, for tests and emergencies
	// only.
	DisableHostVerification bool
}

// Secret is a password. It prints as "[redacted]", so that a Secret in a
// struct logged or formatted with %v or %+v does not reach the output.
type Secret string

// String hides the secret.
func (Secret) String() string { return "[redacted]" }

// GoString hides the secret from %#v.
func (Secret) GoString() string { return `"[redacted]"` }

// Enabled says whether the connections use TLS.
func (o TLSOptions) Enabled() bool {
	return o.Enable || o.CAFile != "" || o.CertFile != "" || o.KeyFile != "" || o.ServerName != "" || o.DisableHostVerification
}

// Config reads the files and returns the TLS configuration, nil when TLS is
// off. Errors name the file and wrap store.ErrInvalid.
func (o TLSOptions) Config() (*tls.Config, error) {
	if !o.Enabled() {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.ServerName, InsecureSkipVerify: o.DisableHostVerification}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: cassandrastore: TLS CA file: %w", store.ErrInvalid, err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: cassandrastore: TLS CA file %s holds no PEM certificate", store.ErrInvalid, o.CAFile)
		}
	}
	switch {
	case o.CertFile != "" && o.KeyFile != "":
		// LoadX509KeyPair's errors say what is wrong, never the key itself.
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: cassandrastore: TLS client certificate %s and key %s: %w", store.ErrInvalid, o.CertFile, o.KeyFile, err)
		}
		c.Certificates = []tls.Certificate{cert}
	case o.CertFile != "":
		return nil, fmt.Errorf("%w: cassandrastore: TLS client certificate given without its key file", store.ErrInvalid)
	case o.KeyFile != "":
		return nil, fmt.Errorf("%w: cassandrastore: TLS client key given without its certificate file", store.ErrInvalid)
	}
	return c, nil
}

// Validate checks the login and reads the TLS files.
func (s Security) Validate() error {
	_, _, err := s.gocql()
	return err
}

// gocql returns the authenticator and the TLS options of a cluster (nil,
// nil: anonymous, plaintext).
func (s Security) gocql() (gocql.Authenticator, *gocql.SslOptions, error) {
	var auth gocql.Authenticator
	switch {
	case s.Username != "" && s.Password != "":
		// AllowedAuthenticators is left empty: gocql then accepts the
		// server-side authenticators that take a username and password
		// (PasswordAuthenticator and the common enterprise ones).
		auth = gocql.PasswordAuthenticator{Username: s.Username, Password: string(s.Password)}
	case s.Username != "":
		return nil, nil, fmt.Errorf("%w: cassandrastore: user %q has no password", store.ErrInvalid, s.Username)
	case s.Password != "":
		return nil, nil, fmt.Errorf("%w: cassandrastore: a password without a username", store.ErrInvalid)
	}
	tc, err := s.TLS.Config()
	if err != nil || tc == nil {
		return auth, nil, err
	}
	// gocql verifies hosts unless both InsecureSkipVerify and this are off.
	return auth, &gocql.SslOptions{Config: tc, EnableHostVerification: !s.TLS.DisableHostVerification}, nil
}
