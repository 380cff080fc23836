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
	register.DoFn2x0[result.Record, func(string)](&recordJSONFn{})
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
	lines := make([]beam.PCollection, len(records))
	for i, r := range records {
		lines[i] = beam.ParDo(s, &recordJSONFn{}, r)
	}
	textlines.Write(s, path, lines...)
}

// recordJSONFn encodes a record as its JSON line, reusing one buffer: a
// recount of millions of ads writes a million records.
type recordJSONFn struct{ buf []byte }

func (f *recordJSONFn) ProcessElement(r result.Record, emit func(string)) {
	f.buf = r.AppendJSON(f.buf[:0])
	emit(string(f.buf))
}

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
