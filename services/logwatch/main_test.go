package logwatch

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when a goroutine outlives them: a
// Watcher that returns from Run must have stopped its producer and every
// promise it started.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
