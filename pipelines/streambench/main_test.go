package streambench

import (
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
)

// TestMain initializes Beam (workers run in this process, loopback).
func TestMain(m *testing.M) { ptest.MainWithDefault(m, "prism") }
