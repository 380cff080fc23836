package logwatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// tfile is one tailed file (one inode).
type tfile struct {
	id      fileID
	path    string
	f       *os.File
	q       *ackq // replaced on truncation; guarded by Watcher.mu
	readOff int64 // next byte to read
	line    []byte
	cut     bool // the current line exceeded MaxLineBytes: skip to its end
	hd      head
	size    int64
	gone    bool // no longer matched by the globs
	idleAt  time.Time
}

func (w *Watcher) sorted() []*tfile {
	fs := make([]*tfile, 0, len(w.files))
	for _, f := range w.files {
		fs = append(fs, f)
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].path < fs[j].path })
	return fs
}

func (w *Watcher) closeFiles() {
	for _, f := range w.files {
		f.f.Close()
	}
}

// scan matches the globs, opens new files, notices files that left the globs
// and truncations, and closes renamed-away files that are finished.
func (w *Watcher) scan(first bool) error {
	seen := map[fileID]bool{}
	for _, g := range w.cfg.Globs {
		paths, err := filepath.Glob(g)
		if err != nil {
			return fmt.Errorf("logwatch: glob %q: %w", g, err)
		}
		for _, p := range paths {
			fi, err := os.Stat(p)
			if err != nil || !fi.Mode().IsRegular() {
				continue // vanished between glob and stat, or a directory
			}
			id, err := idOf(fi)
			if err != nil {
				return fmt.Errorf("logwatch: %w", err)
			}
			seen[id] = true
			if f, ok := w.files[id]; ok {
				if f.path != p {
					w.m.lag.DeleteLabelValues(f.path)
				}
				f.path, f.gone = p, false
				continue
			}
			if err := w.open(p, false); err != nil {
				w.log.Warn("cannot open file; will retry", "file", p, "err", err)
			}
		}
	}
	if first {
		// Positions of files that left the globs while we were down (renamed
		// by rotation): find them by inode next to where they were, and read
		// their rest, so a rotation during downtime loses nothing.
		for id, st := range w.initial {
			if seen[id] {
				continue
			}
			if p := findInode(filepath.Dir(st.Path), id); p != "" {
				if err := w.open(p, true); err == nil {
					continue
				}
			}
			w.log.Warn("a file from the state file is gone; its unread rest (if any) cannot be sent", "file", st.Path, "offset", st.Offset)
			delete(w.initial, id)
		}
	}
	now := time.Now()
	for id, f := range w.files {
		if !seen[id] && !f.gone {
			f.gone = true
			// Name it by where it went, so its state entry and lag series do not
			// collide with the new file under the old name.
			old := f.path
			if p := findInode(filepath.Dir(old), id); p != "" {
				f.path = p
			} else {
				f.path = old + " (deleted)"
			}
			w.m.lag.DeleteLabelValues(old)
			w.log.Info("file left the globs (rotated or deleted); reading it to its end", "file", old, "now", f.path)
		}
		if err := w.checkTruncation(f); err != nil {
			w.log.Warn("checking file failed", "file", f.path, "err", err)
		}
		w.mu.Lock()
		finished := f.gone && f.readOff >= f.size && f.q.empty() && !f.idleAt.IsZero() && now.Sub(f.idleAt) >= w.cfg.RenamedGrace
		w.mu.Unlock()
		if finished {
			w.log.Info("finished rotated file", "file", f.path, "bytes", f.readOff)
			w.m.lag.DeleteLabelValues(f.path)
			f.f.Close()
			delete(w.files, id)
		}
	}
	return nil
}

// findInode looks in dir for a regular file with inode id.
func findInode(dir string, id fileID) string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		if fid, err := idOf(fi); err == nil && fid == id {
			return filepath.Join(dir, e.Name())
		}
	}
	return ""
}

// open starts tailing path at its persisted position, or at 0 for a file we
// have not seen (nothing written before the watcher started is skipped).
func (w *Watcher) open(path string, gone bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	id, err := idOf(fi)
	if err != nil {
		f.Close()
		return err
	}
	if _, ok := w.files[id]; ok { // renamed into the glob between glob and open
		f.Close()
		return nil
	}
	t := &tfile{id: id, path: path, f: f, q: &ackq{}, size: fi.Size(), gone: gone}
	if t.hd, err = readHead(f, int(min(fi.Size(), headLen))); err != nil {
		f.Close()
		return err
	}
	if st, ok := w.initial[id]; ok {
		delete(w.initial, id)
		cur, err := readHead(f, st.Len)
		switch {
		case err != nil:
			f.Close()
			return err
		case st.Offset > fi.Size() || cur != st.head:
			w.log.Warn("file changed since the persisted position (truncated or a reused inode): reading it from the start", "file", path)
		default:
			t.readOff = st.Offset
			t.q.acked = st.Offset
		}
	}
	w.files[id] = t
	w.log.Info("tailing file", "file", path, "offset", t.readOff, "size", t.size)
	return nil
}

// checkTruncation restarts a file at 0 when it shrank below what we read, or
// when its first bytes changed (truncated and rewritten between two looks).
func (w *Watcher) checkTruncation(f *tfile) error {
	fi, err := f.f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	truncated := size < f.readOff
	if !truncated && f.hd.Len > 0 {
		cur, err := readHead(f.f, f.hd.Len)
		if err != nil {
			return err
		}
		truncated = cur != f.hd
	}
	if truncated {
		w.log.Warn("file truncated (copytruncate rotation?): reading it again from the start", "file", f.path, "was_at", f.readOff, "size", size)
		w.m.truncations.Inc()
		w.mu.Lock()
		f.q = &ackq{} // acknowledgements of the old content no longer move this file's position
		w.mu.Unlock()
		f.readOff, f.line, f.cut = 0, f.line[:0], false
		f.hd = head{}
	}
	if f.hd.Len < headLen && size > int64(f.hd.Len) {
		if f.hd, err = readHead(f.f, int(min(size, headLen))); err != nil {
			return err
		}
	}
	f.size = size
	return nil
}

// readFile reads what is new in f and publishes its complete lines, until
// the file's end or the in-flight bounds. It returns the bytes consumed.
func (w *Watcher) readFile(ctx context.Context, f *tfile) (int, error) {
	total := 0
	if !f.idleAt.IsZero() {
		// It was at its end: make sure it was not truncated meanwhile, before
		// reading what may be new content at an old offset.
		if err := w.checkTruncation(f); err != nil {
			return 0, err
		}
	}
	for ctx.Err() == nil && !w.full() {
		n, err := f.f.ReadAt(w.chunk, f.readOff)
		if n == 0 {
			if err != nil && !errors.Is(err, io.EOF) {
				return total, err
			}
			if f.idleAt.IsZero() {
				f.idleAt = time.Now()
			}
			return total, nil
		}
		f.idleAt = time.Time{}
		data := w.chunk[:n]
		consumed := 0
		for consumed < len(data) && !w.full() {
			i := indexByte(data[consumed:], '\n')
			if i < 0 {
				// No newline yet: keep the partial line, it is sent when complete.
				w.appendLine(f, data[consumed:])
				consumed = len(data)
				break
			}
			w.appendLine(f, data[consumed:consumed+i])
			consumed += i + 1
			end := f.readOff + int64(consumed)
			w.publish(ctx, f, end)
		}
		f.readOff += int64(consumed)
		w.m.bytesRead.Add(float64(consumed))
		total += consumed
	}
	return total, nil
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func (w *Watcher) appendLine(f *tfile, b []byte) {
	if f.cut {
		return
	}
	if room := w.cfg.MaxLineBytes - len(f.line); len(b) > room {
		f.line = append(f.line, b[:room]...)
		f.cut = true
		return
	}
	f.line = append(f.line, b...)
}
