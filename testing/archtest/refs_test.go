package archtest

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// outsideRefs match references to files outside the repository: the shared
// folder beside it, notes and specifications kept there, and tracker issues.
// The contract is docs/spec.md, cited by section. The patterns are built from
// parts so that this file does not match itself.
var outsideRefs = []*regexp.Regexp{
	regexp.MustCompile(regexp.QuoteMeta("../" + "shared")),
	regexp.MustCompile(regexp.QuoteMeta("SPEC" + ".md")),
	regexp.MustCompile(regexp.QuoteMeta("NOTES" + ".md")),
	regexp.MustCompile(`(?i)\b` + "issue" + `s? #?[0-9]`),
}

func TestNoReferencesOutsideRepository(t *testing.T) {
	root := repoRoot(t)
	for _, name := range repoFiles(t, root) {
		if name == "go.sum" {
			continue // checksums only
		}
		data, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if bytes.IndexByte(data, 0) >= 0 {
			continue // binary
		}
		for _, re := range outsideRefs {
			for _, loc := range re.FindAllIndex(data, -1) {
				line := bytes.Count(data[:loc[0]], []byte("\n")) + 1
				t.Errorf("%s:%d: %q refers outside the repository", name, line, data[loc[0]:loc[1]])
			}
		}
	}
}
