package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// settableClock is a clock the test moves.
type settableClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *settableClock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *settableClock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// Where stderr is not a terminal, progress is a log line every interval with
// lines, rate and ETA, and a last line when the input is read.
func TestProgressLogsWhenNotATerminal(t *testing.T) {
	clk := &settableClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	p := newProgress("aggregate", 12, clk.now)
	var logs, stderr syncWriter
	log := slog.New(slog.NewTextHandler(&logs, nil))
	stop := p.report(context.Background(), &stderr, log, 5*time.Millisecond)

	// Half the input (3 of 6 lines, 6 of 12 bytes) read in one second.
	if _, err := io.Copy(io.Discard, p.reader(strings.NewReader("a\nb\nc\n"))); err != nil {
		t.Fatal(err)
	}
	clk.set(clk.now().Add(time.Second))
	want := "msg=progress command=aggregate lines=3 bytes=6 lines_per_s=3 elapsed=1s total_bytes=12 percent=50 eta=1s"
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no progress log line %q in:\n%s", want, logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Once the input is wholly read, the figures stop at the read: no
	// sinking rate, no ETA while the pipeline goes on.
	p.inputRead()
	clk.set(clk.now().Add(time.Minute))
	stop()
	if !strings.Contains(logs.String(), `msg="input read" command=aggregate lines=3 bytes=6 lines_per_s=3 elapsed=1s total_bytes=12 percent=50 input_read=true`) {
		t.Errorf("no final line in:\n%s", logs.String())
	}
	if stderr.String() != "" {
		t.Errorf("terminal output %q on a non-terminal", stderr.String())
	}
}

func TestProgressText(t *testing.T) {
	s := snapshot{lines: 1234567, bytes: 1 << 20, total: 4 << 20, linesPerSec: 410000.7, eta: 3 * time.Second}
	if got, want := s.text(), "1,234,567 lines read (25% of 4.0 MiB), 410,000 lines/s, ETA 3s"; got != want {
		t.Errorf("text %q, want %q", got, want)
	}
	s = snapshot{lines: 12, bytes: 100, linesPerSec: 6, eta: -1}
	if got, want := s.text(), "12 lines read (100 B), 6 lines/s"; got != want {
		t.Errorf("text without a total %q, want %q", got, want)
	}
	s = snapshot{lines: 12, bytes: 100, total: 100, linesPerSec: 6, eta: -1, read: true, elapsed: 2 * time.Second}
	if got, want := s.text(), "12 lines read (100% of 100 B), 6 lines/s, input read in 2s; aggregating"; got != want {
		t.Errorf("text after the read %q, want %q", got, want)
	}
}

// End to end: aggregate reads its input through the counting pipe, and its
// last progress line has every line and byte of the file.
func TestAggregateLogsProgress(t *testing.T) {
	in := filepath.Join("testdata", "clicks.jsonl")
	data, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	env, _, stderr := testEnv("")
	if code := run(context.Background(), []string{"aggregate", "--input", in, "--output", filepath.Join(t.TempDir(), "out.jsonl")}, env); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := `msg="input read" command=aggregate lines=` + strconv.Itoa(bytes.Count(data, []byte{'\n'})) +
		" bytes=" + strconv.Itoa(len(data))
	if !strings.Contains(stderr.String(), want) || !strings.Contains(stderr.String(), "percent=100") {
		t.Errorf("stderr has no %q with percent=100:\n%s", want, stderr)
	}
	// --progress-interval 0: no pipe, no progress lines, same results.
	env, _, stderr = testEnv("")
	if code := run(context.Background(), []string{"aggregate", "--input", in, "--progress-interval", "0", "--output", filepath.Join(t.TempDir(), "out.jsonl")}, env); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.Contains(stderr.String(), "input read") {
		t.Errorf("progress with --progress-interval 0:\n%s", stderr)
	}
}

// A pipe nobody opens, or a reader that stops, does not hang the command.
func TestFeedFIFOReleases(t *testing.T) {
	p := newProgress("x", 0, time.Now)
	_, done, err := feedFIFO(t.TempDir(), strings.NewReader("never read\n"), p)
	if err != nil {
		t.Fatal(err)
	}
	finished := make(chan error, 1)
	go func() { finished <- done() }()
	select {
	case <-finished:
	case <-time.After(10 * time.Second):
		t.Fatal("done() hangs when no reader opened the pipe")
	}

	// A reader that stops after the first bytes: done reports it.
	big := strings.NewReader(strings.Repeat("0123456789abcdef\n", 1<<16)) // > the pipe's buffer
	path, done, err := feedFIFO(t.TempDir(), big, p)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Read(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := done(); err == nil {
		t.Error("done() = nil after the reader stopped early")
	}
}

// A failing input source ends the pipe early; the reader only sees EOF, so
// done must report the error for the command to fail.
func TestFeedFIFOReportsSourceError(t *testing.T) {
	p := newProgress("x", 0, time.Now)
	boom := errors.New("disk on fire")
	src := io.MultiReader(strings.NewReader("a\nb\n"), &failingReader{boom})
	path, done, err := feedFIFO(t.TempDir(), src, p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != "a\nb\n" {
		t.Fatalf("read %q, %v", got, err)
	}
	if err := done(); !errors.Is(err, boom) {
		t.Errorf("done() = %v, want %v", err, boom)
	}
	if p.lines.Load() != 2 {
		t.Errorf("counted %d lines, want 2", p.lines.Load())
	}
}

type failingReader struct{ err error }

func (f *failingReader) Read([]byte) (int, error) { return 0, f.err }

// A job's progress counted elsewhere (replay, reconcile: clicks read, from
// the job's metrics) is logged with its unit and rate, no bytes and no ETA,
// and a last line when the job is done.
func TestCountProgressLogs(t *testing.T) {
	clk := &settableClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	var n int64
	var mu sync.Mutex
	count := func() int64 { mu.Lock(); defer mu.Unlock(); return n }
	p := newCountProgress("replay", "clicks", count, clk.now)
	var logs, stderr syncWriter
	stop := p.report(context.Background(), &stderr, slog.New(slog.NewTextHandler(&logs, nil)), 5*time.Millisecond)
	mu.Lock()
	n = 3000
	mu.Unlock()
	clk.set(clk.now().Add(2 * time.Second))
	want := "msg=progress command=replay clicks=3000 clicks_per_s=1500 elapsed=2s"
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), want+"\n") {
		if time.Now().After(deadline) {
			t.Fatalf("no progress log line %q in:\n%s", want, logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	if !strings.Contains(logs.String(), "msg=done command=replay clicks=3000 clicks_per_s=1500 elapsed=2s\n") {
		t.Errorf("no final line in:\n%s", logs.String())
	}
	if got := p.snapshot().text(); got != "3,000 clicks read, 1,500 clicks/s" {
		t.Errorf("terminal text %q", got)
	}
}

// TestReplayLogsProgress: replay's progress counts the raw clicks its job
// reads, from the job's own metrics: its last line says as many as the
// result reports.
func TestReplayLogsProgress(t *testing.T) {
	dir, from, to, _ := rawStore(t)
	env, stdout, stderr := testEnv("")
	args := []string{"replay", "--pebble-dir", dir, "--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339),
		"--window-sizes", "1,5", "--top-n", "10"}
	if code := run(context.Background(), args, env); code != 0 {
		t.Fatalf("replay exit %d: %s", code, stderr)
	}
	var res struct {
		ClicksRead int64 `json:"clicks_read"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil || res.ClicksRead == 0 {
		t.Fatalf("replay result %q: %v", stdout, err)
	}
	want := "msg=done command=replay clicks=" + strconv.FormatInt(res.ClicksRead, 10) + " "
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("no %q in:\n%s", want, stderr)
	}
}
