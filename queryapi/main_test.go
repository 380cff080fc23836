package queryapi

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when a goroutine outlives them: a
// server whose Serve has returned must have stopped its connections, its
// timeouts and its background refreshes.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
