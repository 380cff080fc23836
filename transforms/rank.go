package transforms

import (
	"github.com/adclick/adclick/domain/result"
)

// ranking is an ordered set of (ad, count), best first (count descending,
// then ad_id ascending: result.Less), in which one ad's count can change in
// O(log n). It is a treap over a slice of nodes, so that sliding a window by
// a minute costs the ads of the minute that enters and of the minute that
// leaves, never the whole window: a 60-minute window's top list costs what a
// 1-minute one does.
type ranking struct {
	nodes []rankNode
	free  []int32
	root  int32
	pos   map[string]int32 // ad → node
	seed  uint64
}

type rankNode struct {
	ad          result.AdCount
	prio        uint64
	left, right int32 // -1: none
}

func newRanking() *ranking {
	return &ranking{root: -1, pos: map[string]int32{}, seed: 0x9E3779B97F4A7C15}
}

func (r *ranking) len() int { return len(r.pos) }

// add changes ad's count by delta; a count that reaches zero leaves the set.
func (r *ranking) add(ad string, delta int64) {
	if delta == 0 {
		return
	}
	c := delta
	if i, ok := r.pos[ad]; ok {
		c += r.nodes[i].ad.Count
		r.root = r.remove(r.root, r.nodes[i].ad)
		r.free = append(r.free, i)
		delete(r.pos, ad)
	}
	if c == 0 {
		return
	}
	i := r.alloc(result.AdCount{AdID: ad, Count: c})
	r.pos[ad] = i
	r.root = r.insert(r.root, i)
}

func (r *ranking) alloc(a result.AdCount) int32 {
	// xorshift: priorities need only be independent of the keys.
	r.seed ^= r.seed << 13
	r.seed ^= r.seed >> 7
	r.seed ^= r.seed << 17
	n := rankNode{ad: a, prio: r.seed, left: -1, right: -1}
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
	if result.Less(r.nodes[i].ad, r.nodes[t].ad) {
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

func (r *ranking) remove(t int32, a result.AdCount) int32 {
	if t < 0 {
		return t
	}
	switch {
	case result.Less(a, r.nodes[t].ad):
		r.nodes[t].left = r.remove(r.nodes[t].left, a)
	case result.Less(r.nodes[t].ad, a):
		r.nodes[t].right = r.remove(r.nodes[t].right, a)
	default:
		return r.merge(r.nodes[t].left, r.nodes[t].right)
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

// top returns the n best, best first.
func (r *ranking) top(n int) []result.AdCount {
	out := make([]result.AdCount, 0, min(n, r.len()))
	var walk func(t int32)
	walk = func(t int32) {
		if t < 0 || len(out) == n {
			return
		}
		walk(r.nodes[t].left)
		if len(out) < n {
			out = append(out, r.nodes[t].ad)
		}
		walk(r.nodes[t].right)
	}
	walk(r.root)
	return out
}

// slidingTops computes the top-n list of every w-minute window that holds
// data, ending at each minute from the first minute with data to the last
// one plus w−1, and calls emit with the window's last minute (Unix s). The
// window moves a minute at a time: the entering minute's counts are added,
// the leaving minute's subtracted, so the cost is two passes over each
// minute's ads whatever w is.
func slidingTops(minutes map[int64]map[string]int64, w, n int, emit func(last int64, top []result.AdCount)) {
	if len(minutes) == 0 {
		return
	}
	lo, hi := int64(1<<62), int64(-1<<62)
	for m := range minutes {
		lo, hi = min(lo, m), max(hi, m)
	}
	r := newRanking()
	span := int64(w) * 60
	for end := lo; end <= hi+span-60; end += 60 {
		for ad, c := range minutes[end] {
			r.add(ad, c)
		}
		for ad, c := range minutes[end-span] {
			r.add(ad, -c)
		}
		if r.len() > 0 {
			emit(end, r.top(n))
		}
	}
}
