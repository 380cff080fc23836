//go:build linux

package portable_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/runners"
)

// TestMain: the tests submit from this process; the workers run elsewhere.
func TestMain(m *testing.M) {
	flag.Parse()
	runners.Init()
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// binaries are what the tests run out of process: the job service, the
// PROCESS environment's command (Beam's Go boot program behind unquoteid)
// and the worker binary it stages (adclick).
type binaries struct {
	dir                       string
	jobService, command, boot string
	// worker is adclick under a name of its own, with marker appended:
	// boot stages it as <semi_persist_dir>/staged/<n>-<base name> and runs a
	// copy in /tmp/bin*/worker, both in directories every run on the
	// machine shares, and removes neither. The unique name keeps two runs'
	// staged files apart; the marker finds this run's copies to remove them.
	worker string
	marker []byte
}

// built caches the binaries: linking adclick takes most of a minute on a
// loaded machine, and every test of the package stages the same one.
var built struct {
	sync.Mutex
	binaries
	err error
}

func buildBinaries(t *testing.T) binaries {
	t.Helper()
	built.Lock()
	defer built.Unlock()
	if built.dir == "" && built.err == nil {
		built.binaries, built.err = build()
	}
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.binaries
}

func build() (binaries, error) {
	dir, err := os.MkdirTemp("", "adclick-portable-")
	if err != nil {
		return binaries{}, err
	}
	b := binaries{dir: dir}
	cmd := exec.Command("go", "build", "-o", dir+"/",
		"github.com/adclick/adclick/testing/prismjobservice",
		"github.com/adclick/adclick/testing/prismjobservice/unquoteid",
		"github.com/adclick/adclick/cmd/adclick",
		"github.com/apache/beam/sdks/v2/go/container")
	if out, err := cmd.CombinedOutput(); err != nil {
		return b, fmt.Errorf("build the job service, adclick and Beam's boot program: %w\n%s", err, out)
	}
	b.jobService = filepath.Join(dir, "prismjobservice")
	b.command = filepath.Join(dir, "unquoteid")
	b.boot = filepath.Join(dir, "container")
	var id [8]byte
	_, _ = rand.Read(id[:])
	b.marker = []byte("adclick-portable-test-" + hex.EncodeToString(id[:]))
	b.worker = filepath.Join(dir, "adclick-worker-"+hex.EncodeToString(id[:]))
	if err := os.Rename(filepath.Join(dir, "adclick"), b.worker); err != nil {
		return b, err
	}
	f, err := os.OpenFile(b.worker, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return b, err
	}
	if _, err := f.Write(b.marker); err != nil {
		f.Close()
		return b, err
	}
	return b, f.Close()
}

// startJobService starts the prism job service in a process of its own on
// 127.0.0.1 and returns the runner options that submit to it as `adclick
// stream --runner flink --environment PROCESS` does. The test fails when
// any of it cannot be done: the portable path is what is under test.
func startJobService(t *testing.T) runners.Options {
	t.Helper()
	b := buildBinaries(t)
	t.Cleanup(b.removeWorkerCopies)

	dir := t.TempDir()
	outPath, errPath := filepath.Join(dir, "stdout.log"), filepath.Join(dir, "stderr.log")
	stdout, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	stderr, err := os.Create(errPath)
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	cmd := exec.Command(b.jobService)
	// The workers' working directory too: boot writes pipeline_options.json there.
	cmd.Dir = dir
	// Files, not pipes: the workers inherit them, and a worker may outlive
	// the job service (see stopJobService).
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Its own process group, the workers' too, so that stopJobService can
	// end them all; and it ends should this process die first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the job service: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		stopJobService(t, cmd.Process.Pid, exited)
		if t.Failed() {
			dumpLog(t, outPath)
			dumpLog(t, errPath)
		}
	})
	ep, err := firstLine(outPath, exited, time.Minute)
	if err != nil {
		t.Fatalf("the job service printed no endpoint: %v", err)
	}

	// What `--worker_binary` would set, had adclick the flag. Without it,
	// Beam recompiles the submitting program (runnerlib.BuildTempWorkerBinary),
	// here this test package: minutes on a cold build cache.
	prev := flag.Lookup("worker_binary").Value.String()
	if err := flag.Set("worker_binary", b.worker); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = flag.Set("worker_binary", prev) })

	return runners.Options{Runner: runners.Flink, Endpoint: ep, Environment: "PROCESS",
		EnvironmentConfig: fmt.Sprintf(`{"command": %q, "env": {"BEAM_BOOT": %q}}`, b.command, b.boot)}
}

// stopJobService stops the job service as an operator would (SIGTERM: it
// cancels its jobs and exits), or kills it if it does not within 20 s. Then
// it kills the workers left in its process group: prism ends a PROCESS
// worker by killing the command it started, here Beam's boot program, and
// boot's child, the Go worker, is left behind; a Go worker never exits on
// its own ("Just hang around until we're terminated", harness/init).
func stopJobService(t *testing.T, pid int, exited <-chan error) {
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("job service: %v", err)
		}
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(pid, syscall.SIGKILL)
		t.Errorf("job service: still running 20 s after SIGTERM: killed (%v)", <-exited)
	}
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kill the job service's workers: %v", err)
	}
}

// firstLine waits for the first line of the file path, while the process
// writing it runs.
func firstLine(path string, exited <-chan error, timeout time.Duration) (string, error) {
	deadline := time.After(timeout)
	for {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", err
		}
		if line, _, ok := bytes.Cut(b, []byte("\n")); ok {
			return strings.TrimSpace(string(line)), nil
		}
		select {
		case err := <-exited:
			return "", fmt.Errorf("the job service exited: %v", err)
		case <-deadline:
			return "", fmt.Errorf("nothing after %v", timeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// removeWorkerCopies removes what boot made of the worker binary: the
// staged file (semi_persist_dir is /tmp) and the executable copies.
func (b binaries) removeWorkerCopies() {
	staged, _ := filepath.Glob(filepath.Join("/tmp", "staged", "*-"+filepath.Base(b.worker)))
	for _, s := range staged {
		os.Remove(s)
	}
	copies, _ := filepath.Glob("/tmp/bin*/worker")
	for _, c := range copies {
		if endsWith(c, b.marker) {
			os.RemoveAll(filepath.Dir(c))
		}
	}
}

func endsWith(path string, marker []byte) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() < int64(len(marker)) {
		return false
	}
	tail := make([]byte, len(marker))
	if _, err := f.ReadAt(tail, st.Size()-int64(len(marker))); err != nil {
		return false
	}
	return bytes.Equal(tail, marker)
}

func dumpLog(t *testing.T, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Logf("job service output: %v", err)
		return
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	t.Logf("job service and worker %s (last %d lines):\n%s", filepath.Base(path), len(lines), strings.Join(lines, "\n"))
}

// readRecords reads result records, one JSON object a line.
func readRecords(t *testing.T, path string) []result.Record {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []result.Record
	for l := range bytes.Lines(b) {
		var r result.Record
		if err := json.Unmarshal(l, &r); err != nil {
			t.Fatalf("bad result %q: %v", l, err)
		}
		recs = append(recs, r)
	}
	return recs
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("\n"))
}
