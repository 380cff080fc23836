package logwatch

// ackq tracks one file generation's sent lines in file order, so the
// persisted position only ever moves over a prefix that is fully acknowledged
// even though acknowledgements arrive out of order across partitions.
type ackq struct {
	base  int64 // sequence number of ends[head]
	head  int
	ends  []int64
	done  []bool
	acked int64 // file offset up to which every line is acknowledged
}

func (q *ackq) push(end int64) int64 {
	q.ends = append(q.ends, end)
	q.done = append(q.done, false)
	return q.base + int64(len(q.ends)-q.head) - 1
}

func (q *ackq) ack(seq int64) {
	q.done[q.head+int(seq-q.base)] = true
	n := q.head
	for n < len(q.done) && q.done[n] {
		n++
	}
	if n == q.head {
		return
	}
	q.acked = q.ends[n-1]
	q.base += int64(n - q.head)
	q.head = n
	// Compact once the dead prefix dominates: amortised O(1) per line.
	if q.head >= 1024 && q.head*2 >= len(q.ends) {
		q.ends = q.ends[:copy(q.ends, q.ends[q.head:])]
		q.done = q.done[:copy(q.done, q.done[q.head:])]
		q.head = 0
	}
}

func (q *ackq) empty() bool { return q.head == len(q.ends) }
