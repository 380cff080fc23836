package queryapi

import (
	"testing"

	"github.com/adclick/adclick/io/store/pebblestore"
)

// backends lists the stores the end-to-end tests run against: the test fake
// and the embedded Pebble store.
func backends(t *testing.T) []backend {
	return []backend{memBackend(), pebbleBackend()}
}

func pebbleBackend() backend {
	return backend{"pebble", func(t *testing.T) storeUnderTest {
		st, err := pebblestore.Open(t.TempDir(), pebblestore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := st.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
		return st
	}}
}
