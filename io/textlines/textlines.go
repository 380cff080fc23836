// Package textlines is the bounded Beam source of click log files: it reads
// JSON-lines files and emits their lines in click.Lines batches.
//
// A file is read by one DoFn call, in order, so that everything downstream in
// the fused stage sees the file's lines in file order ("the first copy seen
// counts", docs/spec.md §1). Lines longer than the limit of docs/spec.md §1 are not buffered whole:
// their first click.MaxLineBytes+1 bytes go downstream, which is enough for
// the parser to reject them as too long.
package textlines

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/adclick/adclick/domain/click"
)

func init() {
	register.DoFn3x1[context.Context, string, func(click.Lines), error](&readFn{})
	register.Emitter1[click.Lines]()
}

// DefaultBatchLines is how many lines one emitted batch holds.
const DefaultBatchLines = 4096

// Read reads every file named in paths (a PCollection of string).
func Read(s beam.Scope, paths beam.PCollection) beam.PCollection {
	s = s.Scope("textlines.Read")
	return beam.ParDo(s, &readFn{BatchLines: DefaultBatchLines}, paths)
}

type readFn struct {
	BatchLines int
}

func (f *readFn) ProcessElement(ctx context.Context, path string, emit func(click.Lines)) error {
	fh, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("textlines: %w", err)
	}
	defer fh.Close()
	return Scan(ctx, fh, f.BatchLines, func(lines [][]byte) error {
		emit(click.Lines{Lines: lines, Watermark: click.NoWatermark})
		return nil
	})
}

// Scan splits r into lines (without "\n" or "\r\n") and calls fn with batches
// of up to batch lines. The batch and its bytes are reused after fn returns.
func Scan(ctx context.Context, r io.Reader, batch int, fn func([][]byte) error) error {
	if batch < 1 {
		batch = DefaultBatchLines
	}
	br := bufio.NewReaderSize(r, 1<<20)
	arena := make([]byte, 0, 1<<20)
	ends := make([]int, 0, batch)
	lines := make([][]byte, 0, batch)
	flush := func() error {
		if len(ends) == 0 {
			return nil
		}
		lines = lines[:0]
		start := 0
		for _, e := range ends {
			lines = append(lines, arena[start:e:e])
			start = e
		}
		err := fn(lines)
		arena, ends = arena[:0], ends[:0]
		return err
	}
	add := func(line []byte) error {
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		arena = append(arena, line...)
		ends = append(ends, len(arena))
		if len(ends) >= batch {
			if err := ctx.Err(); err != nil {
				return err
			}
			return flush()
		}
		return nil
	}
	for {
		chunk, err := br.ReadSlice('\n')
		switch {
		case err == nil:
			if e := add(chunk[:len(chunk)-1]); e != nil {
				return e
			}
		case errors.Is(err, bufio.ErrBufferFull):
			// An over-long line: keep a prefix that still reads as too long,
			// skip the rest up to its newline.
			keep := chunk[:min(len(chunk), click.MaxLineBytes+1)]
			keep = append([]byte(nil), keep...)
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("textlines: %w", err)
			}
			if e := add(keep); e != nil {
				return e
			}
			if errors.Is(err, io.EOF) {
				return flush()
			}
		case errors.Is(err, io.EOF):
			if len(chunk) > 0 { // last line without a newline
				if e := add(chunk); e != nil {
					return e
				}
			}
			return flush()
		default:
			return fmt.Errorf("textlines: %w", err)
		}
	}
}
