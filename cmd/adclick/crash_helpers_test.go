package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"

	"github.com/adclick/adclick/io/store/pebblestore"
	"github.com/adclick/adclick/testing/clickgen"
	"github.com/adclick/adclick/testing/e2e"
	"github.com/adclick/adclick/testing/reference"
)

// crashChildEnv carries a component's command line (JSON) to a child process
// started by TestCrash: the test binary re-executes itself as `adclick`, so
// each component is a real process that can be SIGKILLed.
const crashChildEnv = "ADCLICK_CRASH_CHILD_ARGS"

// TestCrashChild is not a test: it is the entry point of the component
// processes TestCrash starts. Without crashChildEnv it does nothing.
func TestCrashChild(t *testing.T) {
	a := os.Getenv(crashChildEnv)
	if a == "" {
		return
	}
	var args []string
	if err := json.Unmarshal([]byte(a), &args); err != nil {
		fmt.Fprintf(os.Stderr, "crash child: bad %s: %v\n", crashChildEnv, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, args, &cliEnv{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv})
	stop()
	os.Exit(code)
}

// crashChild re-executes the test binary as adclick with args: each
// component is a real process that can be SIGKILLed (see TestCrashChild).
func crashChild(args []string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1", "-test.timeout=0")
	b, _ := json.Marshal(args)
	cmd.Env = append(e2e.CleanEnv(), crashChildEnv+"="+string(b))
	return cmd
}

// readPebble opens the Pebble store in dir (its writer has exited) and reads
// every count, filtered count and top list of the minutes [from, to).
func readPebble(t *testing.T, dir string, from, to int64, windowSizes []int) reference.Results {
	t.Helper()
	st, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		t.Fatalf("opening the store %s: %v", dir, err)
	}
	defer st.Close()
	return e2e.ReadStore(t, st, from, to, windowSizes)
}

// writeLog writes the generated lines as a click log.
func writeLog(t *testing.T, path string, lines [][]byte) int64 {
	t.Helper()
	var b bytes.Buffer
	for _, l := range lines {
		b.Write(l)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return int64(b.Len())
}

// genCrashLines generates n lines with their truth.
func genCrashLines(t *testing.T, n int, cfg clickgen.Config) ([][]byte, *clickgen.Truth) {
	t.Helper()
	lines, truth, err := clickgen.Lines(n, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return lines, truth
}

// positionAt says whether the log watcher's state file records offset size
// (every line acknowledged by the broker and persisted).
func positionAt(state string, size int64) bool {
	b, err := os.ReadFile(state)
	return err == nil && bytes.Contains(b, []byte(fmt.Sprintf(`"offset":%d`, size)))
}
