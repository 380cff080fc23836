package textlines_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/adclick/adclick/io/textlines"
	"github.com/adclick/adclick/runners"
)

func TestMain(m *testing.M) { ptest.MainWithDefault(m, "prism") }

func TestWrite(t *testing.T) {
	many := make([]string, 5000)
	for i := range many {
		many[i] = fmt.Sprintf("line %d with \"quotes\" and ünïcode", i)
	}
	tests := []struct {
		name string
		cols [][]string
	}{
		{"one collection", [][]string{many}},
		{"several collections", [][]string{many[:10], many[10:4000], many[4000:]}},
		{"an empty collection among others", [][]string{{}, many[:3]}},
		{"nothing at all", [][]string{{}}},
		{"no collections", nil},
		{"empty lines count", [][]string{{"", "", "x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "out.jsonl")
			// An existing file is replaced, not appended to.
			if err := os.WriteFile(path, []byte("stale\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			p, s := beam.NewPipelineWithRoot()
			var cols []beam.PCollection
			var want []string
			for _, c := range tt.cols {
				if len(c) == 0 {
					cols = append(cols, beam.CreateList(s, []string{}))
					continue
				}
				cols = append(cols, beam.CreateList(s, c))
				want = append(want, c...)
			}
			textlines.Write(s, path, cols...)
			if _, err := runners.Run(context.Background(), p, runners.Options{Runner: runners.Prism}); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			if len(b) > 0 {
				if b[len(b)-1] != '\n' {
					t.Fatalf("output does not end in a newline: %q", b[max(0, len(b)-20):])
				}
				got = strings.Split(string(b[:len(b)-1]), "\n")
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("got %d lines, want %d (first got %q)", len(got), len(want), got[:min(3, len(got))])
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o644 {
				t.Errorf("mode %v, want 0644", fi.Mode().Perm())
			}
			// Only the output is left: no parts, no temporary file.
			ents, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(ents) != 1 {
				var names []string
				for _, e := range ents {
					names = append(names, e.Name())
				}
				t.Errorf("directory holds %v, want only out.jsonl", names)
			}
		})
	}
}

func TestWriteIntoMissingDirectoryFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "such", "dir", "out.jsonl")
	p, s := beam.NewPipelineWithRoot()
	textlines.Write(s, path, beam.CreateList(s, []string{"a"}))
	if _, err := runners.Run(context.Background(), p, runners.Options{Runner: runners.Prism}); err == nil {
		t.Fatal("want an error writing into a directory that does not exist")
	}
}
