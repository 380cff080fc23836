package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/adclick/adclick/testing/clickgen"
)

func genEnv(stdout, stderr io.Writer, env map[string]string) *cliEnv {
	return &cliEnv{stdin: strings.NewReader(""), stdout: stdout, stderr: stderr, getenv: func(k string) string { return env[k] }}
}

func TestGenerateUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--count", "-1"}, nil, "--count"},
		{[]string{"--rate", "-5"}, nil, "--rate"},
		{[]string{"--start", "yesterday"}, nil, "--start"},
		{[]string{"--dup-share", "0.7", "--malformed-share", "0.7"}, nil, "add up"},
		{[]string{"--zipf-s", "0.5"}, nil, "zipf"},
		{[]string{"--truth", "x.json"}, nil, "--count"},
		{nil, map[string]string{"ADCLICK_ADS": "-3"}, "ads"},
		{nil, map[string]string{"ADCLICK_LATE_SHARE": "lots"}, "ADCLICK_LATE_SHARE"},
		{[]string{"--out", ""}, nil, "--out"},
	} {
		var errb bytes.Buffer
		args := append([]string{"generate"}, tc.args...)
		if code := run(context.Background(), args, genEnv(io.Discard, &errb, tc.env)); code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v %v: exit %d, stderr %q; want exit 2 mentioning %q", tc.args, tc.env, code, errb.String(), tc.want)
		}
	}
}

// The command writes exactly the library's lines for its seed and start,
// takes flags from the environment, appends to files, and writes the truth.
func TestGenerateOutput(t *testing.T) {
	start := "2026-03-01T12:00:00Z"
	var out bytes.Buffer
	env := map[string]string{"ADCLICK_SEED": "77", "ADCLICK_MALFORMED_SHARE": "0.1"}
	args := []string{"generate", "--count", "500", "--start", start, "--dup-share", "0.1", "--ads", "20"}
	if code := run(context.Background(), args, genEnv(&out, io.Discard, env)); code != 0 {
		t.Fatalf("exit %d", code)
	}
	st, _ := time.Parse(time.RFC3339, start)
	g, err := clickgen.New(clickgen.Config{Seed: 77, Start: st, Ads: 20, DupShare: 0.1, MalformedShare: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	for range 500 {
		want.Write(g.Next().Data)
		want.WriteByte('\n')
	}
	if !bytes.Equal(out.Bytes(), want.Bytes()) {
		t.Fatal("generate output differs from the library's stream for the same seed and start")
	}

	dir := t.TempDir()
	file, truth := filepath.Join(dir, "c.log"), filepath.Join(dir, "truth.json")
	for i := range 2 {
		args := []string{"generate", "--count", "300", "--seed", "5", "--out", file, "--truth", truth, "--malformed-share", "0.2"}
		if code := run(context.Background(), args, genEnv(io.Discard, io.Discard, nil)); code != 0 {
			t.Fatalf("run %d: exit %d", i, code)
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(b, []byte{'\n'}); n != 600 {
		t.Fatalf("%d lines after two appending runs, want 600", n)
	}
	tr, err := clickgen.ReadTruth(truth)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Lines != 300 || tr.Count(clickgen.Malformed) != int64(len(tr.Malformed)) || len(tr.Malformed) == 0 {
		t.Fatalf("truth: %d lines, %d malformed listed, counts %v", tr.Lines, len(tr.Malformed), tr.Counts)
	}
}
