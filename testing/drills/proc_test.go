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
	"testing"
	"time"

	"github.com/adclick/adclick/testing/e2e"
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

// run runs adclick once to completion (topics, migrate).
func runOnce(t *testing.T, bin string, timeout time.Duration, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = e2e.CleanEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("adclick %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// positionAt says whether the log watcher's state file records offset size
// (every line up to there acknowledged by the broker and persisted).
func positionAt(state string, size int64) bool {
	b, err := os.ReadFile(state)
	return err == nil && bytes.Contains(b, []byte(fmt.Sprintf(`"offset":%d`, size)))
}
