package main

import (
	"bytes"
	"context"
	"io"
	"regexp"
	"strings"
	"testing"
)

// helpOf runs `adclick <name> -h` and returns what it printed.
func helpOf(t *testing.T, name string) string {
	t.Helper()
	var errb bytes.Buffer
	if code := run(context.Background(), []string{name, "-h"}, genEnv(io.Discard, &errb, nil)); code != 0 {
		t.Fatalf("adclick %s -h: exit %d: %s", name, code, errb.String())
	}
	return errb.String()
}

// flagLine is a flag's first line in PrintDefaults: "  -name [value-name]".
var flagLine = regexp.MustCompile(`(?m)^  -(\S+)(?: (.+))?$`)

// TestHelpTexts runs every command's -h: each flag's value name is its type
// (a backquoted word in a usage string would replace it, as
// "-pebble-dir adclick serve" did), and --runner names the runners that
// command really takes.
func TestHelpTexts(t *testing.T) {
	typeNames := map[string]bool{"string": true, "int": true, "int64": true, "uint": true, "uint64": true,
		"float": true, "duration": true, "value": true}
	runnerWant := map[string]struct{ has, hasNot []string }{
		"aggregate": {[]string{"prism", "direct"}, []string{"flink"}},
		"replay":    {[]string{"prism", "direct"}, []string{"flink"}},
		"reconcile": {[]string{"prism", "direct"}, []string{"flink"}},
		"stream":    {[]string{"prism", "flink"}, []string{"bounded", "direct"}},
		"allinone":  {[]string{"not used", "prism"}, []string{"bounded", "direct", "flink"}},
	}
	for name := range commands() {
		t.Run(name, func(t *testing.T) {
			h := helpOf(t, name)
			flags := flagLine.FindAllStringSubmatch(h, -1)
			if len(flags) == 0 {
				t.Fatalf("no flag listed in:\n%s", h)
			}
			for _, f := range flags {
				if f[2] != "" && !typeNames[f[2]] {
					t.Errorf("-%s shows value name %q: a backquoted word in its usage string", f[1], f[2])
				}
			}
			want, ok := runnerWant[name]
			if !ok {
				if strings.Contains(h, "\n  -runner") {
					t.Errorf("%s has a --runner flag this test does not check", name)
				}
				return
			}
			usage := flagUsage(h, "runner")
			for _, s := range want.has {
				if !strings.Contains(usage, s) {
					t.Errorf("--runner usage %q does not mention %q", usage, s)
				}
			}
			for _, s := range want.hasNot {
				if strings.Contains(usage, s) {
					t.Errorf("--runner usage %q mentions %q", usage, s)
				}
			}
		})
	}
}

// flagUsage is the usage text PrintDefaults printed under -name.
func flagUsage(help, name string) string {
	lines := strings.Split(help, "\n")
	for i, l := range lines {
		if l == "  -"+name || strings.HasPrefix(l, "  -"+name+" ") {
			var out []string
			for _, u := range lines[i+1:] {
				if !strings.HasPrefix(u, "    \t") {
					break
				}
				out = append(out, strings.TrimPrefix(u, "    \t"))
			}
			return strings.Join(out, " ")
		}
	}
	return ""
}

// TestWindowSizesOneParser: every command reads --window-sizes with serve's
// rules (positive minutes, duplicates dropped, at least one), with the same
// message.
func TestWindowSizesOneParser(t *testing.T) {
	for _, args := range [][]string{
		{"aggregate", "--input", "-", "--window-sizes", "5,x"},
		{"aggregate", "--input", "-", "--window-sizes", "0"},
		{"aggregate", "--input", "-", "--window-sizes", ","},
		{"replay", "--from", "2026-01-01T00:00", "--to", "2026-01-01T01:00", "--window-sizes", "-5"},
		{"stream", "--window-sizes", "1,0"},
		{"serve", "--insecure", "--window-sizes", "1,0"},
	} {
		var errb bytes.Buffer
		code := run(context.Background(), args, genEnv(io.Discard, &errb, nil))
		if code != 2 || !strings.Contains(errb.String(), "--window-sizes") ||
			!(strings.Contains(errb.String(), "is not a positive number of minutes") || strings.Contains(errb.String(), "no window size")) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 with the window-size parser's message", args, code, errb.String())
		}
	}
	sizes, err := parseWindowSizes(" 5, 1,5 ,60")
	if err != nil || len(sizes) != 3 || sizes[0] != 5 || sizes[1] != 1 || sizes[2] != 60 {
		t.Errorf("parseWindowSizes = %v, %v; want [5 1 60]", sizes, err)
	}
}
