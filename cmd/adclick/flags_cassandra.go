package main

import (
	"flag"
	"fmt"

	"github.com/adclick/adclick/io/store/backend"
	"github.com/adclick/adclick/io/store/cassandrastore"
)

// cassandraSecurityFlags are the login and TLS of every command that talks
// to Cassandra (through storeOptions, and serve's and migrate's own store
// flags). The password has no flag: a command line is visible to every
// user of the machine (ps, /proc) and kept in shell histories, so it comes
// from --cassandra-password-file or ADCLICK_CASSANDRA_PASSWORD.
type cassandraSecurityFlags struct {
	username, passwordFile, caFile, certFile, keyFile, serverName string
	tls, noHostVerification                                       bool
}

func (f *cassandraSecurityFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.username, "cassandra-username", "", "Cassandra login role (PasswordAuthenticator); its password from --cassandra-password-file or "+backend.EnvCassandraPassword)
	fs.StringVar(&f.passwordFile, "cassandra-password-file", "", "file whose first line is the Cassandra password (else "+backend.EnvCassandraPassword+"; no flag takes the password itself)")
	fs.BoolVar(&f.tls, "cassandra-tls", false, "connect to Cassandra over TLS (implied by the other --cassandra-tls-* flags); the nodes' certificates are verified")
	fs.StringVar(&f.caFile, "cassandra-tls-ca-file", "", "PEM file of the CAs that signed the Cassandra nodes' certificates (default: the system's)")
	fs.StringVar(&f.certFile, "cassandra-tls-cert-file", "", "PEM client certificate, for nodes that require client authentication (with --cassandra-tls-key-file)")
	fs.StringVar(&f.keyFile, "cassandra-tls-key-file", "", "PEM key of --cassandra-tls-cert-file")
	fs.StringVar(&f.serverName, "cassandra-tls-server-name", "", "name the nodes' certificates must carry (default: the host dialled)")
	fs.BoolVar(&f.noHostVerification, "cassandra-tls-no-host-verification", false, "accept any certificate: INSECURE, anyone between here and the nodes can read the password and the data")
}

// apply puts the login and TLS into cfg, a Cassandra store's, after checking
// them as opening the store would: the password file read, the TLS files
// loaded. It does nothing for other backends.
//
// The password goes into cfg.CassandraPassword, which commands use directly;
// pipelines leave it out of the job they build, and their workers read the
// file (cfg.CassandraPasswordFile) or the environment variable themselves.
func (f *cassandraSecurityFlags) apply(env *cliEnv, cfg *backend.Config) error {
	if cfg.Backend != backend.Cassandra {
		return nil
	}
	cfg.CassandraUsername = f.username
	cfg.CassandraPasswordFile = f.passwordFile
	cfg.CassandraTLS = cassandrastore.TLSOptions{Enable: f.tls, CAFile: f.caFile, CertFile: f.certFile, KeyFile: f.keyFile,
		ServerName: f.serverName, DisableHostVerification: f.noHostVerification}
	switch {
	case f.passwordFile != "":
		pw, err := backend.ReadPasswordFile(f.passwordFile)
		if err != nil {
			return fmt.Errorf("%w: --cassandra-password-file: %v", errUsage, err)
		}
		cfg.CassandraPassword = pw
	case env.getenv(backend.EnvCassandraPassword) != "":
		cfg.CassandraPassword = cassandrastore.Secret(env.getenv(backend.EnvCassandraPassword))
	}
	if f.username == "" && cfg.CassandraPassword != "" {
		return fmt.Errorf("%w: a Cassandra password is given (--cassandra-password-file or %s) but no --cassandra-username", errUsage, backend.EnvCassandraPassword)
	}
	if f.username != "" && cfg.CassandraPassword == "" {
		return fmt.Errorf("%w: --cassandra-username %s needs a password: --cassandra-password-file or %s", errUsage, f.username, backend.EnvCassandraPassword)
	}
	if _, err := cfg.CassandraSecurity(); err != nil {
		return fmt.Errorf("%w: Cassandra security flags: %v", errUsage, err)
	}
	if f.noHostVerification {
		env.log.Warn("--cassandra-tls-no-host-verification: the Cassandra nodes' certificates are NOT verified; anyone on the network path can pose as a node and read the password and the data")
	}
	return nil
}
