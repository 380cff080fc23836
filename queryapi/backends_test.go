package queryapi

import "testing"

// backends lists the stores the end-to-end tests run against.
func backends(t *testing.T) []backend {
	return []backend{memBackend()}
}
