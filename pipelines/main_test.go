package pipelines_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
)

func TestMain(m *testing.M) {
	code := ptest.MainRetWithDefault(m, "prism")
	if benchPath != "" {
		// The benchmarks' generated log is shared by every benchmark of the
		// process, so it outlives them; ~150 MB were left behind per run.
		os.RemoveAll(filepath.Dir(benchPath))
	}
	os.Exit(code)
}
