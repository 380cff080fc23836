package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/zeebo/xxh3"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/runners"
	"github.com/adclick/adclick/testing/reference"
)

var update = flag.Bool("update", false, "rewrite golden files")

func testEnv(stdin string) (*cliEnv, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return &cliEnv{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}, &out, &errb
}

func sortedLines(b []byte) []string {
	l := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	sort.Strings(l)
	return l
}

// TestAggregateGolden: the recount of a hand-written log with every kind of
// line matches the golden file, and the golden file itself matches the
// independent reference recount (so it is not merely what the code said).
func TestAggregateGolden(t *testing.T) {
	in := filepath.Join("testdata", "clicks.jsonl")
	golden := filepath.Join("testdata", "clicks.golden.jsonl")
	out := filepath.Join(t.TempDir(), "out.jsonl")
	env, _, stderr := testEnv("")
	if code := run(context.Background(), []string{"aggregate", "--input", in, "--output", out}, env); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(golden, []byte(strings.Join(sortedLines(got), "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := sortedLines(got), sortedLines(want); !reflect.DeepEqual(g, w) {
		t.Errorf("output differs from %s:\n got %d lines\nwant %d lines", golden, len(g), len(w))
	}
	if !strings.Contains(stderr.String(), "lines=27 unique_clicks=12 duplicates=2 too_late=0 rejected=13") {
		t.Errorf("summary: %s", stderr)
	}

	// The golden file against the reference oracle.
	raw, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	var lines [][]byte
	for _, l := range bytes.Split(bytes.TrimSuffix(raw, []byte("\n")), []byte("\n")) {
		lines = append(lines, bytes.TrimSuffix(l, []byte("\r")))
	}
	ref := reference.Recount(lines, []int{1, 5, 15, 60}, 100, nil)
	var recs []result.Record
	for _, l := range sortedLines(want) {
		var r result.Record
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	g := reference.FromRecords(recs)
	if !reflect.DeepEqual(g.Counts, ref.Counts) || !reflect.DeepEqual(g.Filtered, ref.Filtered) || !reflect.DeepEqual(g.Top, ref.Top) {
		t.Errorf("golden file disagrees with the reference recount:\ncounts %v\nwant   %v", g.Counts, ref.Counts)
	}
	reference.CompareDigests(t, g, ref)
	if ref.Rejected != 13 || ref.Dups != 2 {
		t.Errorf("reference: rejected %d dups %d", ref.Rejected, ref.Dups)
	}
}

func TestAggregateStdinAndDeadLetters(t *testing.T) {
	in := `{"event_id":"a","ad_id":"x","timestamp":1704103201000}` + "\n" + `{oops` + "\n"
	dead := filepath.Join(t.TempDir(), "dead.jsonl")
	env, stdout, stderr := testEnv(in)
	if code := run(context.Background(), []string{"aggregate", "--input", "-", "--dead-letters", dead, "--window-sizes", "1"}, env); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	h := xxh3.HashString128("a") // the digest of the set {a}
	digest := result.Digest{Hi: h.Hi, Lo: h.Lo, Known: true}
	if !strings.Contains(stdout.String(), `{"type":"count","ad_id":"x","minute":"2024-01-01T10:00:00Z","count":1,"digest":"`+digest.String()+`"}`) {
		t.Errorf("stdout: %s", stdout)
	}
	d, err := os.ReadFile(dead)
	if err != nil {
		t.Fatal(err)
	}
	var dl struct{ Line, Reason, Detail string }
	if err := json.Unmarshal(bytes.TrimSpace(d), &dl); err != nil || dl.Line != "{oops" || dl.Reason != "invalid_json" || dl.Detail == "" {
		t.Errorf("dead letter %s (%v)", d, err)
	}
}

func TestAggregateUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"no input", []string{"aggregate"}, nil, "--input is required"},
		{"missing file", []string{"aggregate", "--input", "/nonexistent/x"}, nil, "no such file"},
		{"bad window sizes", []string{"aggregate", "--input", "-", "--window-sizes", "1,x"}, nil, "is not a positive number of minutes"},
		{"zero top-n", []string{"aggregate", "--input", "-", "--top-n", "0"}, nil, "top-N 0"},
		{"bad env value", []string{"aggregate", "--input", "-"}, map[string]string{"ADCLICK_TOP_N": "many"}, "ADCLICK_TOP_N"},
		{"bad runner", []string{"aggregate", "--input", "-", "--runner", "spark"}, nil, "prism or direct"},
		{"positional argument", []string{"aggregate", "--input", "-", "extra"}, nil, "unexpected argument"},
		{"unknown command", []string{"frobnicate"}, nil, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, _, stderr := testEnv("")
			env.getenv = func(k string) string { return tt.env[k] }
			if code := run(context.Background(), tt.args, env); code != 2 {
				t.Fatalf("exit %d, want 2 (usage); stderr: %s", code, stderr)
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("stderr %q does not mention %q", stderr, tt.want)
			}
		})
	}
}

func TestMain(m *testing.M) {
	flag.Parse()
	runners.Init()
	os.Exit(m.Run())
}
