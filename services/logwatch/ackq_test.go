package logwatch

import (
	"math/rand/v2"
	"testing"
)

// The acknowledged position only ever covers a fully acknowledged prefix,
// whatever order the acknowledgements come in.
func TestAckQueue(t *testing.T) {
	for _, n := range []int{1, 10, 5000} {
		r := rand.New(rand.NewPCG(uint64(n), 1))
		q := &ackq{}
		seqs := make([]int64, n)
		for i := range seqs {
			seqs[i] = q.push(int64(i+1) * 10)
		}
		acked := make([]bool, n)
		for _, i := range r.Perm(n) {
			q.ack(seqs[i])
			acked[i] = true
			prefix := 0
			for prefix < n && acked[prefix] {
				prefix++
			}
			if q.acked != int64(prefix)*10 {
				t.Fatalf("n=%d: acked %d with a prefix of %d lines done", n, q.acked, prefix)
			}
		}
		if !q.empty() {
			t.Fatalf("n=%d: queue not empty after every ack", n)
		}
		// Pushing after a full drain keeps working.
		s := q.push(int64(n+1) * 10)
		q.ack(s)
		if q.acked != int64(n+1)*10 {
			t.Fatalf("n=%d: acked %d after a later line", n, q.acked)
		}
	}
}
