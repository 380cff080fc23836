package transforms

import (
	"math/rand/v2"
	"testing"
)

// TestIDSetMatchesMap: the set agrees with a Go map through inserts of new
// and repeated ids, the all-zero id, ids that collide in their slot bits,
// growth, and resets of small and large tables.
func TestIDSetMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var s idSet
	ref := map[clickID]bool{}
	var pool []clickID
	check := func(round int) {
		t.Helper()
		if s.len() != len(ref) {
			t.Fatalf("round %d: len %d, want %d", round, s.len(), len(ref))
		}
		for _, id := range pool {
			if s.has(id) != ref[id] {
				t.Fatalf("round %d: has(%v) = %v, want %v", round, id, s.has(id), ref[id])
			}
		}
	}
	for round, n := range []int{10, 5000, 100_000, 3, 70_000} {
		pool = pool[:0]
		for i := 0; i < n; i++ {
			var id clickID
			switch rng.IntN(10) {
			case 0:
				id = clickID{} // the id that cannot live in a slot
			case 1:
				id = clickID{Hi: uint64(rng.IntN(4)), Lo: rng.Uint64()} // same slot bits
			default:
				id = clickID{Hi: rng.Uint64(), Lo: rng.Uint64()}
			}
			pool = append(pool, id)
			if rng.IntN(3) == 0 && len(pool) > 1 {
				id = pool[rng.IntN(len(pool)-1)] // a repeat
			}
			if got, want := s.add(id), !ref[id]; got != want {
				t.Fatalf("round %d: add(%v) = %v, want %v", round, id, got, want)
			}
			ref[id] = true
		}
		check(round)
		s.reset()
		clear(ref)
		check(round)
	}
}
