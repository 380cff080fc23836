package runners

import (
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"go.uber.org/goleak"
)

// TestMain fails the package's tests when a goroutine outlives them: a
// finished or cancelled job must leave no worker, stream or connection
// behind. The one goroutine meant to stay is prism's job server, which
// startPrismJobServer starts once and which lives as long as the process.
func TestMain(m *testing.M) {
	beam.Init() // the loopback worker runs in this process
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism/internal/jobservices.(*Server).Serve"))
}
