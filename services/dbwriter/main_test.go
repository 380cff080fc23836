package dbwriter

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when a goroutine outlives them: Run
// must have closed its consumer, and every store it was given must be closed
// by the test that opened it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
