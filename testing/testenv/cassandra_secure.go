package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gocql/gocql"
)

// SecureRole is the login role SecureCassandra creates for the tests: not a
// superuser, so a test that works with it works with an ordinary role.
const SecureRole = "adclick_test"

// SecureNode is the secured test Cassandra (`cassandra.sh start-secure`):
// PasswordAuthenticator, and client encryption required on its CQL port.
type SecureNode struct {
	Hosts    []string
	CAFile   string // PEM certificate of the CA that signed the node's certificate
	Username string // SecureRole
	Password string // the role's password, new at every start of the node
}

// Cluster returns a gocql configuration that logs in as the role over TLS
// with host verification.
func (n SecureNode) Cluster() (*gocql.ClusterConfig, error) {
	pem, err := os.ReadFile(n.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s", n.CAFile)
	}
	c := gocql.NewCluster(n.Hosts...)
	c.Authenticator = gocql.PasswordAuthenticator{Username: n.Username, Password: n.Password}
	c.SslOpts = &gocql.SslOptions{Config: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, EnableHostVerification: true}
	c.Timeout = 30 * time.Second // a schema change waits for agreement
	c.ConnectTimeout = 10 * time.Second
	return c, nil
}

// SecureCassandra returns the secured test node, starting it when it does
// not answer: it runs only for the tests that need it, so a run without
// them does not share the machine with a second Cassandra. Test processes of
// several packages take turns through a lock file; the first starts the
// node, the others find it. run.sh stops it at the end of the test run
// (outside run.sh, testing/testenv/cassandra.sh stop-secure does).
//
// It fails the test when the node cannot start, and skips it only under
// ADCLICK_SKIP_INTEGRATION=1 outside CI, as the other servers do.
func SecureCassandra(t testing.TB) SecureNode {
	t.Helper()
	dir := os.Getenv(EnvDir)
	if dir == "" {
		skipOrFail(t, fmt.Sprintf("the secured Cassandra needs %s (run.sh sets it)", EnvDir))
	}
	addrFile := filepath.Join(dir, "cassandra-secure.addr")
	if !answers(addrFile) && os.Getenv(EnvSkip) == "1" {
		skipOrFail(t, "the secured Cassandra is not running")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	unlock, err := lockFile(filepath.Join(dir, "cassandra-secure.lock"))
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	defer unlock()
	if !answers(addrFile) {
		start := time.Now()
		if err := startSecure(dir); err != nil {
			t.Fatalf("testenv: the secured Cassandra did not start: %v", err)
		}
		t.Logf("testenv: started the secured Cassandra in %v", time.Since(start).Round(100*time.Millisecond))
	}
	n, err := readNode(dir)
	if err != nil {
		t.Fatalf("testenv: the secured Cassandra: %v", err)
	}
	if err := ensureRole(n, filepath.Join(dir, "cassandra-secure-run", "role-created")); err != nil {
		t.Fatalf("testenv: the secured Cassandra's test role: %v", err)
	}
	return n
}

// SecureCassandraKeyspace is CassandraKeyspace on the secured node.
func SecureCassandraKeyspace(t testing.TB, prefix string) (SecureNode, string) {
	t.Helper()
	n := SecureCassandra(t)
	return n, keyspaceFor(t, prefix, n.Cluster)
}

// answers says whether the address in addrFile accepts connections.
func answers(addrFile string) bool {
	b, err := os.ReadFile(addrFile)
	if err != nil {
		return false
	}
	c, err := net.DialTimeout("tcp", strings.TrimSpace(string(b)), 2*time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// lockFile takes an exclusive lock on path, waiting for it.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

func startSecure(dir string) error {
	script, err := serverScript("cassandra.sh")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, script, "start-secure")
	cmd.Env = append(os.Environ(), EnvDir+"="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w; cassandra.sh start-secure said:\n%s", err, out)
	}
	return nil
}

func readNode(dir string) (SecureNode, error) {
	addr, err := os.ReadFile(filepath.Join(dir, "cassandra-secure.addr"))
	if err != nil {
		return SecureNode{}, err
	}
	pw, err := os.ReadFile(filepath.Join(dir, "cassandra-secure.password"))
	if err != nil {
		return SecureNode{}, err
	}
	return SecureNode{Hosts: strings.Split(strings.TrimSpace(string(addr)), ","),
		CAFile:   filepath.Join(dir, "cassandra-secure-tls", "ca.pem"),
		Username: SecureRole, Password: strings.TrimSpace(string(pw))}, nil
}

// ensureRole creates the test role once per start of the node (marker lives
// in the run directory, which every start wipes), logged in as the default
// superuser cassandra/cassandra. The node creates that superuser shortly
// after it opens its port, so the login is retried for a while.
func ensureRole(n SecureNode, marker string) error {
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	admin := n
	admin.Username, admin.Password = "cassandra", "cassandra"
	c, err := admin.Cluster()
	if err != nil {
		return err
	}
	var sess *gocql.Session
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(time.Second) {
		if sess, err = c.CreateSession(); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("log in as the default superuser: %w", err)
		}
	}
	defer sess.Close()
	// The password is the script's: base64 letters and digits, nothing to
	// escape in a CQL string.
	q := fmt.Sprintf("CREATE ROLE IF NOT EXISTS %s WITH PASSWORD = '%s' AND LOGIN = true", SecureRole, n.Password)
	if err := sess.Query(q).Exec(); err != nil {
		return errors.New("CREATE ROLE failed: " + strings.ReplaceAll(err.Error(), n.Password, "[redacted]"))
	}
	return os.WriteFile(marker, nil, 0o600)
}
