package clickgen

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/adclick/adclick/domain/click"

	"github.com/adclick/adclick/io/atomicfile"
)

// Truth is the ground truth of a generated stream: what each non-normal line
// is, so a test can derive expected counts without trusting the code it tests.
// Valid lines are Normal, Duplicate, Late and TooLate; the unique clicks are
// the valid lines minus the Duplicates; the real-time results should count the
// unique clicks minus the TooLate ones.
type Truth struct {
	Seed     uint64 `json:"seed"`
	IDPrefix string `json:"id_prefix"`
	Lines    int64  `json:"lines"`
	// Counts of lines by kind name (normal, duplicate, late, too_late, malformed).
	Counts map[string]int64 `json:"counts"`
	// Duplicates holds the event_id of every duplicate line, in stream order
	// (an event_id appears once per extra copy).
	Duplicates []string `json:"duplicates"`
	// Late and TooLate hold the event_ids of those lines.
	Late    []string `json:"late"`
	TooLate []string `json:"too_late"`
	// Malformed holds every malformed line's index and the reason click.Parser gives.
	Malformed []MalformedLine `json:"malformed"`
}

// MalformedLine is one malformed line of the stream.
type MalformedLine struct {
	Line   int64        `json:"line"` // 0-based line index
	Reason click.Reason `json:"reason"`
}

func (t *Truth) record(l *Line) {
	t.Lines++
	if t.Counts == nil {
		t.Counts = make(map[string]int64, numKinds)
	}
	t.Counts[l.Kind.String()]++
	switch l.Kind {
	case Duplicate:
		t.Duplicates = append(t.Duplicates, string(l.EventID))
	case Late:
		t.Late = append(t.Late, string(l.EventID))
	case TooLate:
		t.TooLate = append(t.TooLate, string(l.EventID))
	case Malformed:
		t.Malformed = append(t.Malformed, MalformedLine{Line: l.Index, Reason: l.Reason})
	}
}

// Count returns how many lines of kind k were generated.
func (t *Truth) Count(k Kind) int64 { return t.Counts[k.String()] }

// WriteFile writes t as JSON to path atomically (temp file, fsync, rename), so a
// reader never sees half a sidecar.
func (t *Truth) WriteFile(path string) error {
	b, err := json.MarshalIndent(t, "", " ")
	if err != nil {
		return fmt.Errorf("clickgen: encode truth: %w", err)
	}
	if err := atomicfile.Write(path, append(b, '\n')); err != nil {
		return fmt.Errorf("clickgen: write truth: %w", err)
	}
	return nil
}

// ReadTruth reads a sidecar written by WriteFile.
func ReadTruth(path string) (*Truth, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("clickgen: read truth: %w", err)
	}
	var t Truth
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("clickgen: read truth %s: %w", path, err)
	}
	return &t, nil
}
