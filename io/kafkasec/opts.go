package kafkasec

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Opts returns the franz-go options that make a client connect as s says,
// reading the CA, the client certificate, its key and the password now. The
// zero Security returns no option.
func (s Security) Opts() ([]kgo.Opt, error) {
	if err := s.Check(); err != nil {
		return nil, err
	}
	var opts []kgo.Opt
	if s.TLS.Enabled {
		cfg, err := s.TLS.Config()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	if s.SASL.Mechanism != "" {
		m, err := s.SASL.mechanism()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

// Config builds the standard TLS configuration: TLS 1.2 at least, the
// brokers' certificates verified against CAFile (or the system's roots) and
// ServerName (or each broker's host, which franz-go fills in per dial).
func (t TLS) Config() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		b, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka TLS CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("kafka TLS CA file %s: no PEM certificate in it", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		// LoadX509KeyPair's errors name what is wrong, never the key's bytes.
		c, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka TLS client certificate %s and key %s: %w", t.CertFile, t.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg, nil
}

func (a SASL) mechanism() (sasl.Mechanism, error) {
	pw, err := a.password()
	if err != nil {
		return nil, err
	}
	switch a.Mechanism {
	case Plain:
		return plain.Auth{User: a.Username, Pass: pw}.AsMechanism(), nil
	case ScramSHA256:
		return scram.Auth{User: a.Username, Pass: pw}.AsSha256Mechanism(), nil
	case ScramSHA512:
		return scram.Auth{User: a.Username, Pass: pw}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("kafka SASL: unknown mechanism %q", a.Mechanism)
}

// password reads the password from its file (its first line: a trailing
// newline is not part of it) or its environment variable.
func (a SASL) password() (string, error) {
	if a.PasswordFile != "" {
		b, err := os.ReadFile(a.PasswordFile)
		if err != nil {
			// *PathError: the operation, the path and the errno; no content.
			return "", fmt.Errorf("kafka SASL password file: %w", err)
		}
		pw, _, _ := strings.Cut(string(b), "\n")
		pw = strings.TrimSuffix(pw, "\r")
		if pw == "" {
			return "", fmt.Errorf("kafka SASL password file %s: the first line is empty", a.PasswordFile)
		}
		return pw, nil
	}
	if a.PasswordEnv != "" {
		pw := os.Getenv(a.PasswordEnv)
		if pw == "" {
			return "", fmt.Errorf("kafka SASL: the password variable %s is not set in this process's environment", a.PasswordEnv)
		}
		return pw, nil
	}
	return "", errors.New("kafka SASL: no password file or variable")
}
