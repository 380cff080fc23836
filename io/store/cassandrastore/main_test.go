package cassandrastore_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the tests if a goroutine outlives them. A Store's Close
// stops what it started, gocql's background goroutines included, so nothing
// needs ignoring.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
