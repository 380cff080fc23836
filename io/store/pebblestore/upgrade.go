package pebblestore

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/cockroachdb/pebble/vfs"
)

// defaultMergerName is the merger Pebble records for a database opened
// without one: adclick's databases from before merger.go.
const defaultMergerName = "pebble.concatenate"

// upgradeMerger lets Open use merger.go on a database created before it.
// Pebble keeps the merger's name in the newest OPTIONS-<n> file and refuses
// another name. Those databases never held a merge operand (every write was
// a Set), so the name can change without changing what any key reads: the
// newest OPTIONS file is rewritten (temporary file, sync, rename, sync of
// the directory) with merger.go's name. A database that already has it, or
// none, is left as it is.
func upgradeMerger(fs vfs.FS, dir string) error {
	names, err := fs.List(dir)
	if err != nil {
		return err
	}
	newest, num := "", int64(-1)
	for _, n := range names {
		rest, ok := strings.CutPrefix(n, "OPTIONS-")
		if !ok {
			continue
		}
		if v, err := strconv.ParseInt(rest, 10, 64); err == nil && v > num {
			newest, num = n, v
		}
	}
	if newest == "" {
		return nil
	}
	path := fs.PathJoin(dir, newest)
	old, err := readAll(fs, path)
	if err != nil {
		return err
	}
	from := []byte("merger=" + defaultMergerName + "\n")
	if !bytes.Contains(old, from) {
		return nil
	}
	upgraded := bytes.Replace(old, from, []byte("merger="+mergerName+"\n"), 1)
	tmp := path + ".adclick-upgrade"
	if err := writeSynced(fs, tmp, upgraded); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := fs.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(fs, dir)
}

func readAll(fs vfs.FS, path string) ([]byte, error) {
	f, err := fs.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

func writeSynced(fs vfs.FS, path string, b []byte) error {
	f, err := fs.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
