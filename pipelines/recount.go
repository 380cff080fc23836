package pipelines

import (
	"encoding/json"
	"fmt"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/textlines"
	"github.com/adclick/adclick/transforms"
)

func init() {
	register.DoFn2x0[result.Record, func(string)](&writeRecordsFn{})
	register.Function2x1(deadLetterJSON)
	register.Emitter1[string]()
}

// RecountFiles is the bounded recount of click log files: read the files,
// aggregate them as a batch, and write result records (docs/spec.md §4) as JSON
// lines to outPath and dead letters to deadPath (skipped when empty).
func RecountFiles(s beam.Scope, paths []string, cfg transforms.Config, outPath, deadPath string) error {
	if len(paths) == 0 {
		return fmt.Errorf("pipelines: no input files")
	}
	cfg.Streaming = false
	files := beam.CreateList(s, paths)
	out, err := transforms.Aggregate(s, textlines.Read(s, files), cfg)
	if err != nil {
		return err
	}
	// The parts, not the flattened Records: each part's lines are then
	// written in the stage that made them.
	WriteRecords(s, outPath, out.RecordParts...)
	if deadPath != "" {
		s := s.Scope("deadletters")
		textlines.Write(s, deadPath, beam.ParDo(s, deadLetterJSON, out.DeadLetters))
	}
	return nil
}

// WriteRecords writes the result records of every collection as docs/spec.md §4
// JSON lines to one file, which appears once complete.
func WriteRecords(s beam.Scope, path string, records ...beam.PCollection) {
	s = s.Scope("WriteRecords")
	dir := textlines.PartsDir(path)
	names := make([]beam.PCollection, len(records))
	for i, r := range records {
		names[i] = beam.ParDo(s, &writeRecordsFn{Part: textlines.Part{Dir: dir}}, r)
	}
	textlines.Join(s, path, dir, names...)
}

// writeRecordsFn encodes each record's JSON line straight into the bundle's
// part file: a recount of millions of ads writes a million records, and a
// string element per line between an encoding step and the file cost a DoFn
// call and an allocation each.
type writeRecordsFn struct {
	textlines.Part
	buf []byte
}

func (f *writeRecordsFn) StartBundle(_ func(string)) { f.Reset() }

func (f *writeRecordsFn) ProcessElement(r result.Record, _ func(string)) {
	if w := f.Writer(); w != nil {
		f.buf = append(r.AppendJSON(f.buf[:0]), '\n')
		w.Write(f.buf) // errors are sticky; checked by Finish
	}
}

func (f *writeRecordsFn) FinishBundle(emit func(string)) error { return f.Finish(emit) }

func deadLetterJSON(d click.DeadLetter, emit func(string)) error {
	b, err := deadLetterBytes(d)
	if err != nil {
		return err
	}
	emit(string(b))
	return nil
}

func deadLetterBytes(d click.DeadLetter) ([]byte, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("pipelines: encode dead letter: %w", err)
	}
	return b, nil
}
