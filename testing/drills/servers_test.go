package drills

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/adclick/adclick/testing/e2e"
)

// server is a private Kafka or Cassandra started by testing/testenv's script
// under a directory of its own, so that a drill may stop it without
// disturbing other packages' tests on the shared servers. The scripts start
// on fresh data and free ports; restart brings the node back on the same
// ports and data by re-running the exact command line the script used.
type server struct {
	t      *testing.T
	kind   string // "kafka" or "cassandra": the script's and its files' name
	script string
	dir    string // its ADCLICK_TESTENV_DIR
	env    []string
	addr   string

	argv    []string // the node's command line and working directory,
	cwd     string   // saved at stop for restart
	restart *exec.Cmd
	exited  chan struct{}
	// restartedAt, exitedAt and exitErr say when the restarted node came
	// up and when and how it ended (exitErr is set before exited closes).
	restartedAt, exitedAt time.Time
	exitErr               error
}

// startServer starts a private server; the test fails when it cannot.
func startServer(t *testing.T, kind string, extraEnv ...string) *server {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("..", "testenv", kind+".sh"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := &server{t: t, kind: kind, script: script, dir: dir}
	s.env = append(os.Environ(), "ADCLICK_TESTENV_DIR="+dir)
	s.env = append(s.env, extraEnv...)
	linkJars(t, kind, dir)
	// Registered after TempDir: cleanups run last-in first-out, so the node
	// is gone before its directory is removed.
	t.Cleanup(func() {
		s.checkRestarted()
		if t.Failed() {
			if _, err := os.Stat(filepath.Join(dir, kind+"-restart.log")); err == nil {
				t.Logf("private %s after its restart (log tail):\n%s", kind, e2e.Tail(filepath.Join(dir, kind+"-restart.log"), 6000))
			}
		}
		if out, err := s.script1("stop"); err != nil {
			t.Errorf("%s.sh stop: %v\n%s", kind, err, out)
		}
		if s.exited != nil {
			<-s.exited
		}
	})
	t0 := time.Now()
	if out, err := s.script1("start"); err != nil {
		t.Fatalf("private %s: %s.sh start: %v\n%s", kind, kind, err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, kind+".addr"))
	if err != nil {
		t.Fatalf("private %s started but wrote no address: %v", kind, err)
	}
	s.addr = strings.TrimSpace(string(b))
	t.Logf("private %s at %s, started in %v", kind, s.addr, time.Since(t0).Round(time.Second))
	return s
}

// linkJars points the private directory at the jars the shared test
// environment fetched already, if any, so that the script does not fetch
// them again (it does when they are missing).
func linkJars(t *testing.T, kind, dir string) {
	shared := os.Getenv("ADCLICK_TESTENV_DIR")
	if shared == "" {
		shared = filepath.Join("..", "..", ".cache", "testenv")
	}
	shared, err := filepath.Abs(shared)
	if err != nil {
		return
	}
	var pattern, into string
	switch kind {
	case "kafka":
		pattern, into = filepath.Join(shared, "kafka", "lib-*"), filepath.Join(dir, "kafka")
	case "cassandra":
		pattern, into = filepath.Join(shared, "cassandra-[0-9]*"), dir
	}
	matches, _ := filepath.Glob(pattern)
	for _, m := range matches {
		complete := filepath.Join(m, ".complete")
		if kind == "cassandra" {
			complete = filepath.Join(m, "lib", ".complete")
		}
		if _, err := os.Stat(complete); err != nil {
			continue
		}
		if err := os.MkdirAll(into, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(m, filepath.Join(into, filepath.Base(m))); err != nil {
			t.Fatal(err)
		}
	}
}

func (s *server) script1(cmd string) ([]byte, error) {
	c := exec.Command("bash", s.script, cmd)
	c.Env = s.env
	return c.CombinedOutput()
}

func (s *server) pidFile() string { return filepath.Join(s.dir, s.kind+".pid") }

// stop saves the node's command line and stops it with the script (SIGTERM,
// then SIGKILL after 30 s).
func (s *server) stop() {
	s.t.Helper()
	b, err := os.ReadFile(s.pidFile())
	if err != nil {
		s.t.Fatalf("private %s: no pid file: %v", s.kind, err)
	}
	pid := strings.TrimSpace(string(b))
	cmdline, err := os.ReadFile("/proc/" + pid + "/cmdline")
	if err != nil {
		s.t.Fatalf("private %s: reading its command line: %v", s.kind, err)
	}
	s.argv = strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	if s.cwd, err = os.Readlink("/proc/" + pid + "/cwd"); err != nil {
		s.t.Fatalf("private %s: %v", s.kind, err)
	}
	if out, err := s.script1("stop"); err != nil {
		s.t.Fatalf("%s.sh stop: %v\n%s", s.kind, err, out)
	}
	if s.exited != nil {
		<-s.exited
	}
	if conn, err := net.DialTimeout("tcp", s.addr, time.Second); err == nil {
		conn.Close()
		s.t.Fatalf("private %s still accepts connections at %s after stop", s.kind, s.addr)
	}
}

// start runs the saved command line again: same ports, same data. It waits
// until the node accepts connections (and, for Kafka, says it started), and
// leaves the pid and address files where the script's stop finds them.
func (s *server) start(timeout time.Duration) {
	s.t.Helper()
	logPath := filepath.Join(s.dir, s.kind+"-restart.log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = s.cwd, f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		s.t.Fatalf("private %s: restart: %v", s.kind, err)
	}
	exited := make(chan struct{})
	go func() { // reaps it: a zombie would look alive to the scripts
		err := cmd.Wait()
		s.exitedAt, s.exitErr = time.Now(), err
		f.Close()
		close(exited)
	}()
	s.restart, s.exited = cmd, exited
	if err := os.WriteFile(s.pidFile(), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		s.t.Fatal(err)
	}
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-exited:
			s.t.Fatalf("private %s exited during restart:\n%s", s.kind, e2e.Tail(logPath, 4000))
		default:
		}
		ready := true
		if s.kind == "kafka" {
			b, _ := os.ReadFile(logPath)
			ready = bytes.Contains(b, []byte("Kafka Server started"))
		}
		if ready {
			if conn, err := net.DialTimeout("tcp", s.addr, time.Second); err == nil {
				conn.Close()
				break
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("private %s did not come back at %s within %v:\n%s", s.kind, s.addr, timeout, e2e.Tail(logPath, 4000))
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err := os.WriteFile(filepath.Join(s.dir, s.kind+".addr"), []byte(s.addr+"\n"), 0o644); err != nil {
		s.t.Fatal(err)
	}
	s.restartedAt = time.Now()
}

// checkRestarted fails the test when the restarted node ended before the
// test stopped it, saying when and how (a signal: killed from outside, the
// kernel's OOM killer among others; exit status 3: the JVM's
// ExitOnOutOfMemoryError; 0 or 143: a shutdown), with the warnings and
// errors of its log, which its debug lines would push out of the tail.
func (s *server) checkRestarted() {
	if s.exited == nil || s.restartedAt.IsZero() {
		return // not restarted, or start reported its failure
	}
	select {
	case <-s.exited:
	default:
		return // still running: the cleanup stops it
	}
	logPath := filepath.Join(s.dir, s.kind+"-restart.log")
	b, _ := os.ReadFile(logPath)
	var notable []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, " WARN ") || strings.Contains(l, " ERROR ") || strings.Contains(l, "Exception") ||
			strings.Contains(l, "OutOfMemory") || strings.Contains(l, "shutdown") || strings.Contains(l, "Stopping") {
			notable = append(notable, l)
		}
	}
	if len(notable) > 60 {
		notable = notable[len(notable)-60:]
	}
	s.t.Errorf("%s ended on its own %v after its restart: %v; its warnings and errors:\n%s", s,
		s.exitedAt.Sub(s.restartedAt).Round(100*time.Millisecond), s.exitErr, strings.Join(notable, "\n"))
}

func (s *server) String() string { return fmt.Sprintf("private %s at %s", s.kind, s.addr) }
