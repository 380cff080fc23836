package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// EnvDir is the directory run.sh and the server scripts keep their servers'
// state and addresses in.
const EnvDir = "ADCLICK_TESTENV_DIR"

// SecureKafkaServer is the real Kafka node with a SASL_SSL listener that
// kafka.sh start-secure runs: one user, Username, whose password (in
// PasswordFile) works for PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512, and a
// certificate signed by the CA in CAFile for 127.0.0.1 and localhost.
type SecureKafkaServer struct {
	Brokers      []string
	CAFile       string
	Username     string
	PasswordFile string
}

// Password reads the user's password (for tests that look for it in output).
func (s SecureKafkaServer) Password(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(s.PasswordFile)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// SecureKafka returns the secured Kafka node, starting it if it is not
// running yet: only the tests that need it pay its start (about 10 s; the
// node is then shared by every test package of the run, and run.sh stops
// it). It ends the test when the node cannot start, and skips it under
// ADCLICK_SKIP_INTEGRATION=1 when the node is not already running.
func SecureKafka(t testing.TB) SecureKafkaServer {
	t.Helper()
	dir := os.Getenv(EnvDir)
	if dir == "" {
		skipOrFail(t, fmt.Sprintf("the secured Kafka needs %s (run.sh sets it)", EnvDir))
	}
	s, err := readSecureKafka(dir)
	if err == nil {
		return s
	}
	if os.Getenv(EnvSkip) == "1" {
		skipOrFail(t, "the secured Kafka is not running")
	}
	script, err := serverScript("kafka.sh")
	if err != nil {
		t.Fatalf("starting the secured Kafka: %v", err)
	}
	cmd := exec.Command(script, "start-secure")
	cmd.Env = append(os.Environ(), EnvDir+"="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the secured Kafka did not start (%s start-secure: %v):\n%s", script, err, out)
	}
	if s, err = readSecureKafka(dir); err != nil {
		t.Fatalf("the secured Kafka started but: %v\n%s", err, out)
	}
	t.Logf("secured Kafka at %v (%s stop-secure stops it; run.sh does)", s.Brokers, script)
	return s
}

// readSecureKafka reads what kafka.sh start-secure wrote, if its node runs.
func readSecureKafka(dir string) (SecureKafkaServer, error) {
	addr, err := os.ReadFile(filepath.Join(dir, "kafka-secure.addr"))
	if err != nil {
		return SecureKafkaServer{}, err
	}
	pid, err := os.ReadFile(filepath.Join(dir, "kafka-secure.pid"))
	if err != nil {
		return SecureKafkaServer{}, err
	}
	if _, err := os.Stat(filepath.Join("/proc", strings.TrimSpace(string(pid)))); err != nil {
		return SecureKafkaServer{}, fmt.Errorf("the secured Kafka (pid %s) is gone", strings.TrimSpace(string(pid)))
	}
	nd := filepath.Join(dir, "kafka-secure")
	user, err := os.ReadFile(filepath.Join(nd, "username"))
	if err != nil {
		return SecureKafkaServer{}, err
	}
	s := SecureKafkaServer{
		Brokers: strings.Split(strings.TrimSpace(string(addr)), ","),
		CAFile:  filepath.Join(nd, "ca.pem"), Username: strings.TrimSpace(string(user)),
		PasswordFile: filepath.Join(nd, "password"),
	}
	for _, f := range []string{s.CAFile, s.PasswordFile} {
		if _, err := os.Stat(f); err != nil {
			return SecureKafkaServer{}, err
		}
	}
	return s, nil
}

// serverScript finds testing/testenv/<name> above the test's working
// directory (a package directory of this repository).
func serverScript(name string) (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, "testing", "testenv", name), nil
		}
		up := filepath.Dir(d)
		if up == d {
			return "", errors.New("no go.mod above the working directory")
		}
		d = up
	}
}

func skipOrFail(t testing.TB, why string) {
	t.Helper()
	if os.Getenv(EnvSkip) == "1" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s=1 is not allowed in CI: integration tests must run", EnvSkip)
		}
		t.Skipf("%s and %s=1: skipping integration test", why, EnvSkip)
	}
	t.Fatalf("%s: run the tests through `make test` (testing/testenv/run.sh), or set %s=1 to skip integration tests locally", why, EnvSkip)
}
