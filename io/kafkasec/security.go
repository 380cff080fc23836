package kafkasec

import (
	"errors"
	"fmt"
	"strings"
)

// SASL mechanisms.
const (
	Plain       = "PLAIN"
	ScramSHA256 = "SCRAM-SHA-256"
	ScramSHA512 = "SCRAM-SHA-512"
)

// Mechanisms lists the SASL mechanisms Security supports.
var Mechanisms = []string{Plain, ScramSHA256, ScramSHA512}

// Security is how to connect to the brokers. The zero value is anonymous
// plaintext, what a development broker accepts.
type Security struct {
	TLS  TLS
	SASL SASL
}

// TLS configures the connection's encryption and the broker's authentication.
type TLS struct {
	Enabled bool
	// CAFile is a PEM file of the CA certificates that sign the brokers'
	// certificates; empty: the system's roots.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// brokers that authenticate clients by certificate; both or neither.
	CertFile, KeyFile string
	// ServerName is the name the brokers' certificates must carry; empty:
	// the host of each broker address dialled.
	ServerName string
}

// SASL configures the client's authentication. The password is never a
// field: exactly one of PasswordFile and PasswordEnv names where it is read
// when a client is built.
type SASL struct {
	Mechanism    string // "" (none), PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
	Username     string
	PasswordFile string // a file whose first line is the password
	PasswordEnv  string // an environment variable holding the password
	// AllowPlaintext permits SASL without TLS: PLAIN then sends the password
	// in clear and SCRAM's exchange and every record can be read or altered
	// on the way. Refused unless set, so a forgotten TLS flag fails loudly.
	AllowPlaintext bool
}

// Check reports every problem visible without reading a file or the
// environment: what a pipeline can check where it is built, before its
// workers (which may see other files) build the clients.
func (s Security) Check() error {
	var errs []error
	t := s.TLS
	if !t.Enabled && (t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "") {
		errs = append(errs, errors.New("kafka TLS: a CA file, client certificate, key or server name is given but TLS is not enabled"))
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		errs = append(errs, errors.New("kafka TLS: a client certificate needs its key and a key its certificate: give both files or neither"))
	}
	a := s.SASL
	switch {
	case a.Mechanism == "":
		if a.Username != "" || a.PasswordFile != "" || a.PasswordEnv != "" {
			errs = append(errs, errors.New("kafka SASL: a username or password is given but no SASL mechanism"))
		}
	case !knownMechanism(a.Mechanism):
		errs = append(errs, fmt.Errorf("kafka SASL: unknown mechanism %q: want one of %s", a.Mechanism, strings.Join(Mechanisms, ", ")))
	default:
		if a.Username == "" {
			errs = append(errs, fmt.Errorf("kafka SASL %s: no username", a.Mechanism))
		}
		if (a.PasswordFile == "") == (a.PasswordEnv == "") {
			errs = append(errs, fmt.Errorf("kafka SASL %s: the password must come from exactly one of a file and an environment variable", a.Mechanism))
		}
		if !t.Enabled && !a.AllowPlaintext {
			errs = append(errs, fmt.Errorf("kafka SASL %s without TLS: the credentials and every record would cross the network unencrypted; enable TLS (--kafka-tls), or allow SASL over plaintext explicitly (--kafka-sasl-allow-plaintext)", a.Mechanism))
		}
	}
	return errors.Join(errs...)
}

func knownMechanism(m string) bool {
	for _, k := range Mechanisms {
		if m == k {
			return true
		}
	}
	return false
}

// Validate is Check, then reads what Opts will read (the CA, the client
// certificate and key, the password) in this process: the start-up check of
// a command.
func (s Security) Validate() error {
	if err := s.Check(); err != nil {
		return err
	}
	_, err := s.Opts()
	return err
}

// String describes the connection for a log line, without secrets.
func (s Security) String() string {
	var parts []string
	if s.TLS.Enabled {
		t := "TLS"
		if s.TLS.CAFile != "" {
			t += " (CA " + s.TLS.CAFile + ")"
		} else {
			t += " (system CAs)"
		}
		if s.TLS.CertFile != "" {
			t += " with a client certificate"
		}
		parts = append(parts, t)
	} else {
		parts = append(parts, "plaintext")
	}
	if s.SASL.Mechanism != "" {
		parts = append(parts, fmt.Sprintf("SASL %s as %q", s.SASL.Mechanism, s.SASL.Username))
	} else {
		parts = append(parts, "no SASL")
	}
	return strings.Join(parts, ", ")
}
