// Package kafkasec is how adclick's Kafka clients reach a secured cluster:
// TLS (a CA file, an optional client certificate and key, a server name) and
// SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) with franz-go's own mechanisms
// and a standard crypto/tls configuration.
//
// Security is a plain struct of exported fields so that it travels inside
// Beam DoFns to the workers (serialised as JSON with the pipeline). For that
// reason it never holds a secret: the SASL password is named by a file path
// or an environment variable, and the client key by a file path, and both are
// read when a client is built (Opts), in the process that builds it: on a
// Beam worker, at Setup. Errors name files and variables, never their
// contents.
//
// Probe is the start-up check every command runs once: each seed broker is
// asked for metadata with a deadline, and a failure comes back as one message
// naming the broker and the likely cause (a wrong password, an unknown CA, a
// plaintext client on a TLS port, ...). After a successful probe the clients
// keep franz-go's own retries, so a broker restart is still ridden out.
package kafkasec
