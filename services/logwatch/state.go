package logwatch

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"

	"github.com/adclick/adclick/io/atomicfile"
)

// fileID identifies a file independently of its name, so a renamed
// (rotated) file is still recognised as the file we were reading.
type fileID struct {
	Dev uint64 `json:"dev"`
	Ino uint64 `json:"inode"`
}

func idOf(fi fs.FileInfo) (fileID, error) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, fmt.Errorf("no inode for %s on this platform", fi.Name())
	}
	return fileID{Dev: uint64(st.Dev), Ino: uint64(st.Ino)}, nil
}

// headLen is how many leading bytes fingerprint a file. Appending never
// changes them; truncating and rewriting (copytruncate, or an inode reused by
// a new file) almost surely does, because every click line starts with its
// own event_id.
const headLen = 256

// head is a fingerprint of a file's first Len bytes.
type head struct {
	Len  int    `json:"head_len"`
	Hash uint64 `json:"head_hash"`
}

func readHead(f *os.File, n int) (head, error) {
	if n > headLen {
		n = headLen
	}
	buf := make([]byte, n)
	m, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return head{}, err
	}
	h := fnv.New64a()
	h.Write(buf[:m])
	return head{Len: m, Hash: h.Sum64()}, nil
}

// fileState is one file's persisted position: every line that ends at or
// before Offset has been acknowledged by the broker.
type fileState struct {
	Path string `json:"path"` // where it was last seen (informational; identity is the inode)
	fileID
	Offset int64 `json:"offset"`
	head
}

type stateDoc struct {
	Version int         `json:"version"`
	Files   []fileState `json:"files"`
}

func loadState(path string) ([]fileState, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("logwatch: read state: %w", err)
	}
	var d stateDoc
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("logwatch: state file %s is corrupt (fix or remove it; removing re-sends every file from the start): %w", path, err)
	}
	if d.Version != 1 {
		return nil, fmt.Errorf("logwatch: state file %s has version %d, want 1", path, d.Version)
	}
	return d.Files, nil
}

// saveState writes the state atomically: a crash leaves either the old or the
// new file, never a torn one, and so does a full disk (the temporary file is
// removed, the old one stays). A full disk is said as such: it is the one
// failure an operator fixes by hand, and until then positions stay in
// memory and are saved at the next try that fits.
func saveState(path string, files []fileState) error {
	b, err := json.Marshal(stateDoc{Version: 1, Files: files})
	if err != nil {
		return fmt.Errorf("logwatch: encode state: %w", err)
	}
	if err := atomicfile.Write(path, append(b, '\n')); err != nil {
		if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
			return fmt.Errorf("logwatch: disk full under %s: positions not saved (the state file keeps the previous ones; lines acknowledged since are re-sent if the watcher restarts before a save succeeds): %w",
				filepath.Dir(path), err)
		}
		return fmt.Errorf("logwatch: write state: %w", err)
	}
	return nil
}

// persist writes the acknowledged position of every file, if it changed.
func (w *Watcher) persist() error {
	var st []fileState
	w.mu.Lock()
	for _, f := range w.files {
		st = append(st, fileState{Path: f.path, fileID: f.id, Offset: f.q.acked, head: f.hd})
		w.m.lag.WithLabelValues(f.path).Set(float64(max(f.size-f.q.acked, 0)))
	}
	w.mu.Unlock()
	// Keep positions we could not match yet (a file missing for a moment).
	for _, s := range w.initial {
		st = append(st, s)
	}
	sort.Slice(st, func(i, j int) bool { return st[i].Path < st[j].Path })
	if equalStates(st, w.lastSaved) {
		return nil
	}
	// A head fingerprint longer than the acknowledged offset is still right:
	// appends never change a file's first bytes.
	if err := saveState(w.cfg.StatePath, st); err != nil {
		return err
	}
	w.lastSaved = st
	w.m.commits.Inc()
	return nil
}

func equalStates(a, b []fileState) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
