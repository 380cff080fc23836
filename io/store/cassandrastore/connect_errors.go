package cassandrastore

import (
	"errors"
	"fmt"
	"strings"

	"github.com/adclick/adclick/io/store"
)

// Errors of a connection the nodes refused for good: retrying cannot fix
// them, so they do not wrap store.ErrUnavailable.
var (
	// ErrAuthentication: the nodes refused the login, or want one.
	ErrAuthentication = errors.New("cassandra authentication failed")
	// ErrTLS: the TLS handshake failed, or one side speaks TLS and the
	// other does not.
	ErrTLS = errors.New("cassandra TLS failed")
)

// connectErr turns gocql's answer to CreateSession into one message that
// names the nodes and the cause. gocql flattens its errors to strings (with
// %v) on the way out, so the cause is recognised by the texts of the
// server's authenticator, crypto/tls and crypto/x509, and the original text
// is kept at the end. The password is never part of it: gocql's errors
// carry the server's message, which names the user only.
func connectErr(op string, o Options, err error) error {
	at := fmt.Sprintf("cassandrastore: %s: cassandra at %s", op, strings.Join(o.Hosts, ","))
	msg := err.Error()
	has := func(subs ...string) bool {
		for _, s := range subs {
			if strings.Contains(msg, s) {
				return true
			}
		}
		return false
	}
	tlsOn := o.TLS.Enabled()
	switch {
	case has("authentication required"):
		return refused(ErrAuthentication, "%s wants a username and password and none was given (%s)", at, cause(msg))
	case has("password are incorrect", "Bad credentials", "AuthenticationException", "Username and/or password are incorrect"):
		return refused(ErrAuthentication, "%s refused user %q: wrong username or password (%s)", at, o.Username, cause(msg))
	case has("unexpected authenticator"):
		return refused(ErrAuthentication, "%s uses an authenticator that takes no username and password (%s)", at, cause(msg))
	case has("certificate signed by unknown authority"):
		return refused(ErrTLS, "%s: its certificate is not signed by a CA this client trusts (%s): %s", at, trusted(o), cause(msg))
	case has("certificate is valid for", "certificate is not valid for any names"):
		return refused(ErrTLS, "%s: its certificate does not name the host dialled or the TLS server name: %s", at, cause(msg))
	case has("certificate has expired or is not yet valid"):
		return refused(ErrTLS, "%s: its certificate has expired or is not yet valid: %s", at, cause(msg))
	case tlsOn && has("first record does not look like a TLS handshake"):
		return refused(ErrTLS, "%s does not speak TLS on this port (client encryption is off there): %s", at, cause(msg))
	case !tlsOn && has("connection reset by peer", "EOF", "broken pipe"):
		// A node that requires client encryption closes a plaintext
		// connection without a word: the likeliest reason by far.
		return refused(ErrTLS, "%s closed the plaintext connection: it probably requires TLS (client encryption): %s", at, cause(msg))
	case tlsOn && has("tls: ", "remote error"):
		return refused(ErrTLS, "%s: TLS handshake failed: %s", at, cause(msg))
	}
	return fmt.Errorf("%w: %s: %s", store.ErrUnavailable, at, cause(msg))
}

// connectError is a refused connection: its message says everything, and it
// wraps its kind (ErrAuthentication, ErrTLS) without repeating the kind's
// text in front.
type connectError struct {
	kind error
	msg  string
}

func (e *connectError) Error() string { return e.msg }
func (e *connectError) Unwrap() error { return e.kind }

func refused(kind error, format string, args ...any) error {
	return &connectError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// cause strips gocql's wrapping phrases, which say where in gocql the
// error surfaced and nothing about it.
func cause(msg string) string {
	for _, p := range []string{"gocql: unable to create session: ", "unable to discover protocol version: ", "control: unable to connect to initial hosts: "} {
		msg = strings.ReplaceAll(msg, p, "")
	}
	return msg
}

func trusted(o Options) string {
	if o.TLS.CAFile == "" {
		return "no CA file given, so only the system's CAs"
	}
	return "the CAs of " + o.TLS.CAFile
}
