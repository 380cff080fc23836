package kafkasec

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Cause names the likely reason for a failed connection with sec, and what
// to change, or returns "" when err says nothing about the connection's
// security or reachability. The flag names in parentheses are adclick's.
func Cause(err error, sec Security) string {
	if c := saslCause(err, sec); c != "" {
		return c
	}
	if c := tlsCause(err, sec); c != "" {
		return c
	}
	return transportCause(err, sec)
}

func saslCause(err error, sec Security) string {
	a := sec.SASL
	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed):
		return fmt.Sprintf("SASL authentication failed for user %q with %s: wrong username or password, "+
			"or the user has no %s credentials on the broker", a.Username, a.Mechanism, a.Mechanism)
	case errors.Is(err, kerr.UnsupportedSaslMechanism):
		return fmt.Sprintf("the broker does not enable SASL mechanism %s on this listener (--kafka-sasl-mechanism)", a.Mechanism)
	case errors.Is(err, kerr.IllegalSaslState):
		return "the broker did not expect a SASL handshake: this listener is probably not a SASL one (drop --kafka-sasl-mechanism, or use its SASL port)"
	}
	return ""
}

func tlsCause(err error, sec Security) string {
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	var header tls.RecordHeaderError
	var remote *net.OpError
	switch {
	case errors.As(err, &unknownCA):
		if sec.TLS.CAFile == "" {
			return "TLS: the broker's certificate is not signed by a CA this system trusts: give the CA that signed it (--kafka-tls-ca-file)"
		}
		return fmt.Sprintf("TLS: the broker's certificate is not signed by a CA in %s (--kafka-tls-ca-file)", sec.TLS.CAFile)
	case errors.As(err, &hostErr):
		return "TLS: the broker's certificate is not issued for the name dialled: connect by a name it lists, or set the name it carries (--kafka-tls-server-name)"
	case errors.As(err, &invalid):
		return "TLS: the broker's certificate is not valid (expired, not yet valid, or not for servers)"
	case errors.As(err, &header):
		return "TLS: the broker did not answer the TLS handshake: this port is probably a plaintext listener (drop --kafka-tls, or use its TLS port)"
	case errors.As(err, &remote) && remote.Op == "remote error":
		// An alert the broker sent during or right after the handshake.
		return "TLS: the broker refused the handshake: it may require a client certificate (--kafka-tls-cert-file, --kafka-tls-key-file) or not accept the one given"
	case strings.Contains(err.Error(), "tls alert record"):
		// franz-go read a TLS alert as a response size: a plaintext client.
		return "the broker answered with TLS: this listener requires TLS (--kafka-tls)"
	}
	return ""
}

func transportCause(err error, sec Security) string {
	var firstEOF *kgo.ErrFirstReadEOF
	switch {
	case errors.As(err, &firstEOF):
		return firstEOFCause(firstEOF, sec)
	case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
		return "the broker closed the connection: check that the listener's security (TLS, SASL) matches the client's"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused: no broker listens on this address"
	case errors.Is(err, context.DeadlineExceeded) || isContext(err):
		return "no answer in time: the broker is down, unreachable, or not a Kafka listener"
	}
	return ""
}

// firstEOFCause explains a connection the broker closed before its first
// answer. franz-go tells where that happened only in its message: right
// after the dial (for a TLS client, in the handshake) or after the first
// request.
func firstEOFCause(e *kgo.ErrFirstReadEOF, sec Security) string {
	atDial := strings.Contains(e.Error(), "after a dial")
	switch {
	case sec.TLS.Enabled && atDial:
		return "the broker closed the connection in the TLS handshake: this port is probably a plaintext listener (drop --kafka-tls, or use its TLS port)"
	case sec.SASL.Mechanism == "" && sec.TLS.Enabled:
		return "the broker closed the connection at the first request: this listener probably requires SASL (--kafka-sasl-mechanism)"
	case sec.SASL.Mechanism == "":
		return "the broker closed the connection at the first request: this listener probably requires TLS (--kafka-tls) or SASL (--kafka-sasl-mechanism)"
	}
	return "the broker closed the connection at the first request: check that this listener is SASL over TLS (SASL_SSL) and enables the mechanism"
}
