package transforms

// adTable interns the ad ids the streaming top stage holds, so that its
// per-minute counts are keyed by a 4-byte index instead of a string: a
// (minute, ad) entry of a map[uint32]uint32 costs about a dozen bytes, with
// the string about 66. With 60-minute windows at the seed's 2M ads the stage
// holds ~11M entries; keyed by strings it grew the job ~25 MB a minute for
// an hour.
//
// It also holds each ad's total over the minutes held (a bound on any of its
// window sums, see updateTops). An index is freed when that total drops to
// zero, so the table follows the ads held, not every ad ever seen.
type adTable struct {
	idx    map[string]uint32
	names  []string // index → ad id; "" for a free index
	totals []int64  // index → the ad's clicks over the minutes held
	free   []uint32
}

func newAdTable() adTable { return adTable{idx: map[string]uint32{}} }

// intern returns ad's index, giving it one if it has none.
func (t *adTable) intern(ad string) uint32 {
	if i, ok := t.idx[ad]; ok {
		return i
	}
	var i uint32
	if n := len(t.free); n > 0 {
		i, t.free = t.free[n-1], t.free[:n-1]
		t.names[i] = ad
	} else {
		i = uint32(len(t.names))
		t.names = append(t.names, ad)
		t.totals = append(t.totals, 0)
	}
	t.idx[ad] = i
	return i
}

// add changes the total of the ad at index i by d, and frees the index when
// the total reaches zero (no minute held counts the ad any more).
func (t *adTable) add(i uint32, d int64) {
	t.totals[i] += d
	if t.totals[i] > 0 {
		return
	}
	t.totals[i] = 0
	delete(t.idx, t.names[i])
	t.names[i] = ""
	t.free = append(t.free, i)
}

// live is how many ads the table holds.
func (t *adTable) live() int { return len(t.idx) }
