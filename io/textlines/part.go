package textlines

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Part is one bundle's part file of a Write. A sink whose elements are not
// lines embeds it in a DoFn of its own — Reset in StartBundle, Writer for
// each element's bytes, Finish in FinishBundle — and hands the part names to
// Join: the elements are encoded straight into the part's buffer, with no
// string element per line in between.
type Part struct {
	Dir string // the parts directory (PartsDir); created on first use

	f    *os.File
	w    *bufio.Writer
	name string
	err  error
}

// Reset starts a bundle.
func (p *Part) Reset() { p.f, p.w, p.name, p.err = nil, nil, "", nil }

// Writer returns the part's buffer, creating the part on first use, or nil
// after an error (which Finish returns). Write errors are sticky in the
// buffer and checked by Finish.
func (p *Part) Writer() *bufio.Writer {
	if p.err != nil {
		return nil
	}
	if p.w == nil {
		// Mkdir, not MkdirAll: the output's directory must exist already.
		if err := os.Mkdir(p.Dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			p.err = err
			return nil
		}
		p.f, p.err = os.CreateTemp(p.Dir, "part-*")
		if p.err != nil {
			return nil
		}
		p.name = p.f.Name()
		p.w = bufio.NewWriterSize(p.f, 1<<20)
	}
	return p.w
}

// Finish closes the part and emits its name; an error fails the bundle, so
// the runner retries it into a new part. The part is not synced: Join reads
// it back in the same run and syncs the output, and a crash before that
// leaves the old output in place whatever the parts held.
func (p *Part) Finish(emit func(string)) error {
	if p.w == nil {
		return p.err
	}
	err := p.err
	if err == nil {
		err = p.w.Flush()
	}
	if cerr := p.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("textlines: writing part %s: %w", p.name, err)
	}
	emit(p.name)
	return nil
}
