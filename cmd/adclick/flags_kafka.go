package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adclick/adclick/io/kafkasec"
)

// topics are the Kafka topics of the design, and how to reach the brokers
// that hold them: every command that talks to Kafka registers them.
type topics struct {
	brokers, raw, results, dead string
	sec                         kafkaSecurityFlags
}

func (t *topics) register(fs *flag.FlagSet) {
	t.registerRaw(fs)
	fs.StringVar(&t.results, "results-topic", "adclick-results", "topic of aggregation results (keyed by result key)")
	fs.StringVar(&t.dead, "dead-letter-topic", "adclick-dead-letters", "topic of rejected lines with reasons")
}

// registerRaw registers the brokers, their security and the raw topic only
// (the log watcher's).
func (t *topics) registerRaw(fs *flag.FlagSet) {
	fs.StringVar(&t.brokers, "kafka-brokers", "127.0.0.1:9092", "Kafka brokers, host:port comma-separated")
	fs.StringVar(&t.raw, "raw-topic", "adclick-raw", "topic of raw click lines (keyed by ad_id)")
	t.sec.register(fs)
}

func (t *topics) brokerList() ([]string, error) {
	var out []string
	for _, b := range strings.Split(t.brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: --kafka-brokers is empty", errUsage)
	}
	return out, nil
}

// kafkaConn is how a command reaches Kafka: the brokers and the security,
// validated.
type kafkaConn struct {
	brokers []string
	sec     kafkasec.Security
	timeout time.Duration // of the start-up probe
}

// opts are the franz-go options of a client of the brokers.
func (c kafkaConn) opts() ([]kgo.Opt, error) {
	so, err := c.sec.Opts()
	if err != nil {
		return nil, err
	}
	return append([]kgo.Opt{kgo.SeedBrokers(c.brokers...)}, so...), nil
}

// connection checks the brokers and security flags: the files they name are
// read now, so a missing CA or password fails the command before it starts.
func (t *topics) connection(env *cliEnv) (kafkaConn, error) {
	brokers, err := t.brokerList()
	if err != nil {
		return kafkaConn{}, err
	}
	sec, err := t.sec.security(env)
	if err != nil {
		return kafkaConn{}, err
	}
	return kafkaConn{brokers: brokers, sec: sec, timeout: t.sec.probeTimeout}, nil
}

// probe asks the brokers once, at start, for their metadata
// (kafkasec.Probe): a broker that answers wrongly (a failed login, an
// untrusted certificate, TLS on one side only) fails the command with the
// cause at once, where the clients would retry without end. Brokers that do
// not answer at all fail it too, unless wait: the long-running commands
// then start anyway and their clients wait for a broker, as they wait for a
// restarted one.
func (c kafkaConn) probe(ctx context.Context, env *cliEnv, wait bool) error {
	start := time.Now()
	err := kafkasec.Probe(ctx, c.brokers, c.sec, c.timeout)
	switch {
	case err == nil:
		env.log.Info("kafka reachable", "brokers", strings.Join(c.brokers, ","), "security", c.sec.String(),
			"took", time.Since(start).Round(time.Millisecond))
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case wait && kafkasec.Unreachable(err):
		env.log.Warn("no Kafka broker answers yet; starting anyway, the clients keep trying", "brokers", strings.Join(c.brokers, ","), "err", err)
		return nil
	}
	return err
}

// kafkaSecurityFlags are the Kafka connection's TLS and SASL flags. The
// password has no flag (a command line is visible to every user of the
// machine and kept in shell histories): it comes from a file, or from the
// variable ADCLICK_KAFKA_SASL_PASSWORD, which is read from the environment
// of each process that connects, Beam workers included.
type kafkaSecurityFlags struct {
	tls                                   bool
	caFile, certFile, keyFile, serverName string
	mechanism, username, passwordFile     string
	allowPlaintext                        bool
	probeTimeout                          time.Duration
}

// envKafkaPassword is where the SASL password is read from without
// --kafka-sasl-password-file.
const envKafkaPassword = "ADCLICK_KAFKA_SASL_PASSWORD"

func (f *kafkaSecurityFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.tls, "kafka-tls", false, "connect to Kafka over TLS (the brokers' certificates checked against --kafka-tls-ca-file, else the system's CAs); implied by any other --kafka-tls-* flag, as with Cassandra")
	fs.StringVar(&f.caFile, "kafka-tls-ca-file", "", "PEM file of the CA certificates that sign the Kafka brokers' certificates")
	fs.StringVar(&f.certFile, "kafka-tls-cert-file", "", "PEM client certificate for brokers that authenticate clients by certificate (with --kafka-tls-key-file)")
	fs.StringVar(&f.keyFile, "kafka-tls-key-file", "", "PEM private key of --kafka-tls-cert-file (a secret: keep the file readable by adclick only)")
	fs.StringVar(&f.serverName, "kafka-tls-server-name", "", "name the brokers' certificates must carry (default: the host of each broker address)")
	fs.StringVar(&f.mechanism, "kafka-sasl-mechanism", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty = no SASL")
	fs.StringVar(&f.username, "kafka-sasl-username", "", "SASL username")
	fs.StringVar(&f.passwordFile, "kafka-sasl-password-file", "", "file whose first line is the SASL password; without it, the password is read from the environment variable "+envKafkaPassword)
	fs.BoolVar(&f.allowPlaintext, "kafka-sasl-allow-plaintext", false, "allow SASL without --kafka-tls: the credentials (in clear with PLAIN) and every record cross the network unencrypted")
	fs.DurationVar(&f.probeTimeout, "kafka-connect-timeout", kafkasec.DefaultProbeTimeout, "at start, how long a broker has to answer before the command says why it could not connect")
}

// security returns the flags' kafkasec.Security, validated in this process.
func (f *kafkaSecurityFlags) security(env *cliEnv) (kafkasec.Security, error) {
	if f.probeTimeout <= 0 {
		return kafkasec.Security{}, fmt.Errorf("%w: --kafka-connect-timeout must be positive", errUsage)
	}
	sec := kafkasec.Security{
		TLS: kafkasec.TLS{Enabled: f.tls || f.caFile != "" || f.certFile != "" || f.keyFile != "" || f.serverName != "", CAFile: f.caFile, CertFile: f.certFile, KeyFile: f.keyFile, ServerName: f.serverName},
		SASL: kafkasec.SASL{Mechanism: strings.ToUpper(f.mechanism), Username: f.username, PasswordFile: f.passwordFile,
			AllowPlaintext: f.allowPlaintext},
	}
	if sec.SASL.Mechanism != "" && sec.SASL.PasswordFile == "" {
		// The clients read the variable from their process's environment
		// (kafkasec); env.getenv is that environment outside tests.
		if env.getenv(envKafkaPassword) == "" {
			return sec, fmt.Errorf("%w: --kafka-sasl-mechanism %s needs a password: --kafka-sasl-password-file, or the environment variable %s",
				errUsage, sec.SASL.Mechanism, envKafkaPassword)
		}
		sec.SASL.PasswordEnv = envKafkaPassword
	}
	// Check first: its messages are about the flags; Validate's about the
	// files they name.
	if err := sec.Check(); err != nil {
		return sec, fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := sec.Validate(); err != nil {
		return sec, fmt.Errorf("%w: %v", errUsage, err)
	}
	for _, p := range []string{sec.SASL.PasswordFile, sec.TLS.KeyFile} {
		if fi, err := os.Stat(p); p != "" && err == nil && fi.Mode().Perm()&0o077 != 0 {
			env.log.Warn("a Kafka secret file is readable by other users; chmod 600 it", "file", p)
		}
	}
	return sec, nil
}
