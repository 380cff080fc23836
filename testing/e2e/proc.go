package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Proc is one adclick process, restartable with the same arguments. The
// output of every incarnation goes to one log file, so a failing test can
// show what each start did.
type Proc struct {
	Name    string
	LogPath string
	args    []string
	command func(args []string) *exec.Cmd
	t       testing.TB
	starts  int

	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// NewProc returns a stopped process named name whose log is dir/name.log.
// command builds the command for args at every start (a built binary, or the
// test binary re-executing itself as adclick).
func NewProc(t testing.TB, dir, name string, command func(args []string) *exec.Cmd, args ...string) *Proc {
	return &Proc{t: t, Name: name, LogPath: filepath.Join(dir, name+".log"), args: args, command: command}
}

// Binary runs the adclick binary at path with a clean environment.
func Binary(path string) func(args []string) *exec.Cmd {
	return func(args []string) *exec.Cmd {
		cmd := exec.Command(path, args...)
		cmd.Env = CleanEnv()
		return cmd
	}
}

// CleanEnv is the test's environment without ADCLICK_* variables: each is a
// flag default for adclick, and a child must see only its command line.
func CleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ADCLICK_") {
			env = append(env, kv)
		}
	}
	return env
}

// Starts says how often the process was started.
func (p *Proc) Starts() int { return p.starts }

// Start starts the process; it must not be running.
func (p *Proc) Start() {
	p.t.Helper()
	if p.Running() {
		p.t.Fatalf("%s: started while running", p.Name)
	}
	f, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	p.starts++
	fmt.Fprintf(f, "=== %s start #%d at %s: adclick %s\n", p.Name, p.starts, time.Now().Format(time.StampMilli), strings.Join(p.args, " "))
	cmd := p.command(p.args)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		p.t.Fatalf("%s: %v", p.Name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.err = cmd, done, nil
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(f, "=== %s exit at %s: %v\n", p.Name, time.Now().Format(time.StampMilli), err)
		f.Close()
		p.err = err
		close(done)
	}()
}

// Running says whether the process is alive.
func (p *Proc) Running() bool {
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

// Err is the last incarnation's exit error once it has exited.
func (p *Proc) Err() error {
	if p.Running() {
		return nil
	}
	return p.err
}

// Kill SIGKILLs the process and waits for it.
func (p *Proc) Kill() {
	p.t.Helper()
	if !p.Running() {
		p.t.Errorf("%s: killed while not running (exit: %v)", p.Name, p.err)
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Interrupt stops the process with SIGINT; it must exit 0 within timeout.
func (p *Proc) Interrupt(timeout time.Duration) {
	p.t.Helper()
	if !p.Running() {
		p.t.Errorf("%s: not running at the end (exit: %v); log %s", p.Name, p.err, p.LogPath)
		return
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
		if p.err != nil {
			p.t.Errorf("%s: exit after SIGINT: %v; log %s", p.Name, p.err, p.LogPath)
		}
	case <-time.After(timeout):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		p.t.Errorf("%s: did not exit within %v of SIGINT; killed; log %s", p.Name, timeout, p.LogPath)
	}
}

// Alive fails the test when the process died on its own: a fault must not
// make a component give up.
func (p *Proc) Alive() {
	p.t.Helper()
	if !p.Running() {
		p.t.Fatalf("%s exited on its own: %v\n%s", p.Name, p.err, Tail(p.LogPath, 3000))
	}
}

// Tail returns the last n bytes of a file.
func Tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
