package queryapi

import (
	"regexp"
	"strings"
	"testing"

	"github.com/adclick/adclick/queryapi/metrics"
)

func TestDashboardPageIsSelfContained(t *testing.T) {
	ts := newTestServer(t, nil)
	r := ts.do(t, "GET", "/", "")
	if r.code != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("%d %s", r.code, r.header.Get("Content-Type"))
	}
	page := string(r.body)
	// No external asset: every src/href is relative or a fragment.
	for _, m := range regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?([^"' >]+)`).FindAllStringSubmatch(page, -1) {
		if strings.Contains(m[2], "//") {
			t.Errorf("external asset %s", m[2])
		}
	}
	if strings.Count(page, "<script") != 1 || strings.Count(page, "<style") != 1 {
		t.Error("the CSP hashes cover exactly one inline script and one style")
	}
	csp := r.header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "connect-src 'self'", "script-src 'sha256-", "style-src 'sha256-"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	// The page reads the pipeline counters by their shared names.
	for _, name := range []string{metrics.NameClicksIn, metrics.NameRejected, metrics.NameTooLate, metrics.NameDuplicates} {
		if !strings.Contains(page, `"`+name+`"`) {
			t.Errorf("the dashboard does not read %s", name)
		}
	}
}
