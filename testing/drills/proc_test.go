package drills

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// built is the adclick binary built once for the whole package run (a
// cache of a build product, removed by TestMain).
var built struct {
	once      sync.Once
	dir, path string
	err       error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// adclickBin builds cmd/adclick once and returns the binary's path: the
// drills drive the real commands as separate processes, each SIGKILLable.
// ADCLICK_DRILL_BIN names a binary to use instead.
func adclickBin(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		if p := os.Getenv("ADCLICK_DRILL_BIN"); p != "" {
			// A binary built from this tree already (a quicker local loop).
			built.path = p
			return
		}
		dir, err := os.MkdirTemp("", "adclick-drills-")
		if err != nil {
			built.err = err
			return
		}
		built.dir, built.path = dir, filepath.Join(dir, "adclick")
		t0 := time.Now()
		out, err := exec.Command("go", "build", "-o", built.path, "github.com/adclick/adclick/cmd/adclick").CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("go build: %w\n%s", err, out)
			return
		}
		t.Logf("built adclick in %v", time.Since(t0).Round(time.Second))
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

// proc is one adclick process, restartable with the same arguments. The
// output of every incarnation goes to one log file.
type proc struct {
	t       *testing.T
	name    string
	bin     string
	args    []string
	logPath string
	starts  int

	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func newProc(t *testing.T, bin, dir, name string, args ...string) *proc {
	return &proc{t: t, name: name, bin: bin, args: args, logPath: filepath.Join(dir, name+".log")}
}

// cleanEnv is the test's environment without ADCLICK_* variables: each is a
// flag default for adclick.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ADCLICK_") {
			env = append(env, kv)
		}
	}
	return env
}

func (p *proc) start() {
	p.t.Helper()
	if p.running() {
		p.t.Fatalf("%s: started while running", p.name)
	}
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	p.starts++
	fmt.Fprintf(f, "=== %s start #%d at %s: adclick %s\n", p.name, p.starts, time.Now().Format(time.StampMilli), strings.Join(p.args, " "))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = cleanEnv()
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		p.t.Fatalf("%s: %v", p.name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.err = cmd, done, nil
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(f, "=== %s exit at %s: %v\n", p.name, time.Now().Format(time.StampMilli), err)
		f.Close()
		p.err = err
		close(done)
	}()
}

func (p *proc) running() bool {
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill SIGKILLs the process and waits for it.
func (p *proc) kill() {
	p.t.Helper()
	if !p.running() {
		p.t.Errorf("%s: killed while not running (exit: %v)", p.name, p.err)
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// interrupt stops the process with SIGINT; it must exit 0 within timeout.
func (p *proc) interrupt(timeout time.Duration) {
	p.t.Helper()
	if !p.running() {
		p.t.Errorf("%s: not running at the end (exit: %v); log %s", p.name, p.err, p.logPath)
		return
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
		if p.err != nil {
			p.t.Errorf("%s: exit after SIGINT: %v; log %s", p.name, p.err, p.logPath)
		}
	case <-time.After(timeout):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		p.t.Errorf("%s: did not exit within %v of SIGINT; killed; log %s", p.name, timeout, p.logPath)
	}
}

// alive fails the test when the process died on its own: a fault must not
// make a component give up.
func (p *proc) alive() {
	p.t.Helper()
	if !p.running() {
		p.t.Fatalf("%s exited on its own: %v\n%s", p.name, p.err, tail(p.logPath, 3000))
	}
}

// run runs adclick once to completion (topics, migrate).
func runOnce(t *testing.T, bin string, timeout time.Duration, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = cleanEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("adclick %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// tail returns the last n bytes of a file.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// positionAt says whether the log watcher's state file records offset size
// (every line up to there acknowledged by the broker and persisted).
func positionAt(state string, size int64) bool {
	b, err := os.ReadFile(state)
	return err == nil && bytes.Contains(b, []byte(fmt.Sprintf(`"offset":%d`, size)))
}
