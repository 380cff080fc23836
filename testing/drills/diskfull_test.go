package drills

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/adclick/adclick/testing/e2e"
	"github.com/adclick/adclick/testing/testenv"
)

// TestDrillDiskFull: the filesystems under the log watcher's state file and
// under the Pebble store (small tmpfs mounts) fill up for 20 s in the middle
// of the live stream. A process may stop, but only with a clear error that
// says the disk is full (not a panic); at least one must hit it; once space returns (and what stopped is
// started again, as a supervisor would) nothing is lost or corrupt: the store
// ends equal to the recount.
//
// Mounting a tmpfs needs root (CAP_SYS_ADMIN): without it the drill fails.
func TestDrillDiskFull(t *testing.T) {
	t.Parallel()
	brokers := testenv.Kafka(t)
	stateFS, storeFS := smallFS(t, "1m"), smallFS(t, "64m")
	runDrill(t, drill{
		brokers:   brokers,
		stateDir:  stateFS,
		pebbleDir: filepath.Join(storeFS, "pebble"),
		tail:      60 * time.Second,
		tailRate:  40,
		faults: func(r *drillRun) {
			r.sleep(10 * time.Second)
			fillers := []string{fill(r.t, stateFS), fill(r.t, storeFS)}
			r.t.Logf("state and store filesystems full at %v", time.Since(r.tailStart).Round(100*time.Millisecond))
			stopped := map[*e2e.Proc]bool{}
			for full := time.Now(); time.Since(full) < 20*time.Second; time.Sleep(100 * time.Millisecond) {
				for _, p := range r.procs {
					if !p.Running() && !stopped[p] {
						stopped[p] = true
						r.t.Logf("%s stopped on the full disk: %v", p.Name, p.Err())
					}
				}
				r.st.Alive() // the streaming job writes nothing there
			}
			for _, f := range fillers {
				if err := os.Remove(f); err != nil {
					r.t.Fatal(err)
				}
			}
			r.t.Logf("space back at %v", time.Since(r.tailStart).Round(100*time.Millisecond))
			said := false
			for _, p := range []*e2e.Proc{r.lw, r.dw} {
				b, _ := os.ReadFile(p.LogPath)
				hit := bytes.Contains(b, []byte("no space left on device"))
				said = said || hit
				if stopped[p] && !hit {
					r.t.Errorf("%s stopped on the full disk without saying so:\n%s", p.Name, e2e.Tail(p.LogPath, 3000))
				}
				// A clear error is a logged one and an orderly exit, not a
				// crash: a Go panic exits with status 2 and a stack trace.
				if stopped[p] && bytes.Contains(b, []byte("\ngoroutine ")) {
					r.t.Errorf("%s crashed (a panic, %v) on the full disk instead of reporting it:\n%s", p.Name, p.Err(), e2e.Tail(p.LogPath, 3000))
				}
				if hit {
					r.t.Logf("%s reported the full disk (%d times)", p.Name, strings.Count(string(b), "no space left on device"))
				}
			}
			if !said {
				r.t.Errorf("neither the log watcher nor the DB writer reported a full disk: the drill did not reach them")
			}
			for _, p := range r.procs {
				if stopped[p] {
					p.Start()
				}
			}
		},
	})
}

// smallFS mounts a tmpfs of the given size on a temporary directory and
// unmounts it at the end.
func smallFS(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0755", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mounting a %s tmpfs (needs root): %v\n%s", size, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file into dir until the filesystem is full and returns its
// path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, chunk := range []int{1 << 20, 4 << 10, 1} {
		b := make([]byte, chunk)
		for {
			if _, err := f.Write(b); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatal(err)
				}
				break
			}
		}
	}
	return path
}
