package transforms

import (
	"github.com/adclick/adclick/domain/result"
)

// ranking is an ordered set of ads with counts, best first (count
// descending, then ad_id ascending: result.Less), in which one ad's count can
// change in O(log n). It is a treap over a slice of nodes, so that sliding a
// window by a minute costs the ads of the minute that enters and of the
// minute that leaves, never the whole window: a 60-minute window's top list
// costs what a 1-minute one does.
//
// Ads are dense indexes given in ad_id order (adIndex), so the ordering
// compares integers and the position of an ad is a slice lookup: with 2M ads
// string comparisons and map lookups were most of a recount's top-N time.
type ranking struct {
	nodes []rankNode
	free  []int32
	root  int32
	pos   []int32 // ad index → node, -1: not in the set
	n     int
	seed  uint64
}

type rankNode struct {
	ad          int32
	count       int64
	prio        uint64
	left, right int32 // -1: none
}

func newRanking(ads int) *ranking {
	pos := make([]int32, ads)
	for i := range pos {
		pos[i] = -1
	}
	return &ranking{root: -1, pos: pos, seed: 0x9E3779B97F4A7C15}
}

func (r *ranking) len() int { return r.n }

// before is the ranking's order: count descending, then ad_id ascending.
func before(a, b *rankNode) bool {
	if a.count != b.count {
		return a.count > b.count
	}
	return a.ad < b.ad
}

// add changes ad's count by delta; a count that reaches zero leaves the set.
func (r *ranking) add(ad int32, delta int64) {
	if delta == 0 {
		return
	}
	c := delta
	if i := r.pos[ad]; i >= 0 {
		c += r.nodes[i].count
		r.root = r.remove(r.root, i)
		r.free = append(r.free, i)
		r.pos[ad] = -1
		r.n--
	}
	if c == 0 {
		return
	}
	i := r.alloc(ad, c)
	r.pos[ad] = i
	r.n++
	r.root = r.insert(r.root, i)
}

func (r *ranking) alloc(ad int32, count int64) int32 {
	// xorshift: priorities need only be independent of the keys.
	r.seed ^= r.seed << 13
	r.seed ^= r.seed >> 7
	r.seed ^= r.seed << 17
	n := rankNode{ad: ad, count: count, prio: r.seed, left: -1, right: -1}
	if k := len(r.free); k > 0 {
		i := r.free[k-1]
		r.free = r.free[:k-1]
		r.nodes[i] = n
		return i
	}
	r.nodes = append(r.nodes, n)
	return int32(len(r.nodes) - 1)
}

func (r *ranking) insert(t, i int32) int32 {
	if t < 0 {
		return i
	}
	if before(&r.nodes[i], &r.nodes[t]) {
		r.nodes[t].left = r.insert(r.nodes[t].left, i)
		if r.nodes[r.nodes[t].left].prio > r.nodes[t].prio {
			t = r.rotateRight(t)
		}
	} else {
		r.nodes[t].right = r.insert(r.nodes[t].right, i)
		if r.nodes[r.nodes[t].right].prio > r.nodes[t].prio {
			t = r.rotateLeft(t)
		}
	}
	return t
}

// remove takes node i out of the subtree t.
func (r *ranking) remove(t, i int32) int32 {
	if t < 0 {
		return t
	}
	switch {
	case t == i:
		return r.merge(r.nodes[t].left, r.nodes[t].right)
	case before(&r.nodes[i], &r.nodes[t]):
		r.nodes[t].left = r.remove(r.nodes[t].left, i)
	default:
		r.nodes[t].right = r.remove(r.nodes[t].right, i)
	}
	return t
}

func (r *ranking) merge(a, b int32) int32 {
	if a < 0 {
		return b
	}
	if b < 0 {
		return a
	}
	if r.nodes[a].prio > r.nodes[b].prio {
		r.nodes[a].right = r.merge(r.nodes[a].right, b)
		return a
	}
	r.nodes[b].left = r.merge(a, r.nodes[b].left)
	return b
}

func (r *ranking) rotateRight(t int32) int32 {
	l := r.nodes[t].left
	r.nodes[t].left = r.nodes[l].right
	r.nodes[l].right = t
	return l
}

func (r *ranking) rotateLeft(t int32) int32 {
	rt := r.nodes[t].right
	r.nodes[t].right = r.nodes[rt].left
	r.nodes[rt].left = t
	return rt
}

// top returns the n best, best first, with their ad ids from names.
func (r *ranking) top(n int, names []string) []result.AdCount {
	out := make([]result.AdCount, 0, min(n, r.len()))
	var walk func(t int32)
	walk = func(t int32) {
		if t < 0 || len(out) == n {
			return
		}
		walk(r.nodes[t].left)
		if len(out) < n {
			out = append(out, result.AdCount{AdID: names[r.nodes[t].ad], Count: r.nodes[t].count})
		}
		walk(r.nodes[t].right)
	}
	walk(r.root)
	return out
}

// adCount is one ad's count in one minute, the ad as its index.
type adCount struct {
	ad    int32
	count int64
}

// topIndex is a set of minutes' ad counts prepared for slide: ads as dense
// indexes in ad_id order, minutes as offsets from the first. One index
// serves every window size.
type topIndex struct {
	lo       int64 // first minute with data (Unix s)
	byMinute [][]adCount
	names    []string
}

// slide emits the top-n list of every w-minute window that holds data. The
// window moves a minute at a time: the entering minute's counts are added,
// the leaving minute's subtracted (one change per ad in either), so the cost
// is a pass over each minute's ads whatever w is — and only over the ads
// that can reach some window's top n at all (keep), which with many ads is
// a small share of them.
func (t *topIndex) slide(w, n int, emit func(last int64, top []result.AdCount)) {
	keep := t.candidates(w, n)
	r := newRanking(len(t.names))
	delta := make([]int64, len(t.names))
	var touched []int32
	for end := 0; end < len(t.byMinute)+w-1; end++ {
		touched = touched[:0]
		step := func(ads []adCount, sign int64) {
			for _, e := range ads {
				if !keep[e.ad] {
					continue
				}
				if delta[e.ad] == 0 {
					touched = append(touched, e.ad)
				}
				delta[e.ad] += sign * e.count
			}
		}
		if end < len(t.byMinute) {
			step(t.byMinute[end], 1)
		}
		if out := end - w; out >= 0 && out < len(t.byMinute) {
			step(t.byMinute[out], -1)
		}
		for _, ad := range touched {
			r.add(ad, delta[ad])
			delta[ad] = 0
		}
		if r.len() > 0 {
			emit(t.lo+int64(end)*60, r.top(n, t.names))
		}
	}
}
