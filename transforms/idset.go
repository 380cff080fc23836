package transforms

// idSet is the fused stage's set of event id hashes seen in a bundle: an
// open-addressing table with linear probing. Go's map hashes the 16-byte key
// again and probes in groups; the ids are already uniform hashes, so their
// high half is the slot, and one probe is usually one cache line. On the 1M
// line recount this was the stage's largest cost (a map insert per click).
//
// The low half of the id is what picks the aggregation shard, so within a
// shard it is not uniform; the slot is taken from the high half.
type idSet struct {
	slots   []clickID // zero value: empty slot
	n       int       // ids in slots
	hasZero bool      // the all-zero id, which cannot be stored in a slot
}

const idSetMinSlots = 1 << 12

// add inserts id and reports whether it was new.
func (s *idSet) add(id clickID) bool {
	if id == (clickID{}) {
		if s.hasZero {
			return false
		}
		s.hasZero = true
		return true
	}
	if 2*(s.n+1) > len(s.slots) { // keep the load at most 1/2
		s.grow()
	}
	mask := uint64(len(s.slots) - 1)
	for i := id.Hi & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case id:
			return false
		case clickID{}:
			s.slots[i] = id
			s.n++
			return true
		}
	}
}

// has reports whether id is in the set.
func (s *idSet) has(id clickID) bool {
	if id == (clickID{}) {
		return s.hasZero
	}
	if len(s.slots) == 0 {
		return false
	}
	mask := uint64(len(s.slots) - 1)
	for i := id.Hi & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case id:
			return true
		case clickID{}:
			return false
		}
	}
}

func (s *idSet) len() int {
	if s.hasZero {
		return s.n + 1
	}
	return s.n
}

func (s *idSet) grow() {
	old := s.slots
	s.slots = make([]clickID, max(idSetMinSlots, 2*len(old)))
	mask := uint64(len(s.slots) - 1)
	for _, id := range old {
		if id == (clickID{}) {
			continue
		}
		i := id.Hi & mask
		for s.slots[i] != (clickID{}) {
			i = (i + 1) & mask
		}
		s.slots[i] = id
	}
}

// reset empties the set. A table much larger than what it last held is
// dropped, so one large bundle does not pin its memory for the small
// bundles after it (streaming).
func (s *idSet) reset() {
	if len(s.slots) > idSetMinSlots && 8*s.n < len(s.slots) {
		s.slots = nil
	} else {
		clear(s.slots)
	}
	s.n, s.hasZero = 0, false
}
