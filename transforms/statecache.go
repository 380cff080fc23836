package transforms

import (
	"math/rand/v2"
	"sync"
)

// The streaming stages keep their truth in Beam state (a bag of what was
// added, a version written with every change) and a decoded copy of it in
// memory, so that a bundle costs what it adds, not what the key holds. The
// copy is taken only when its version equals the one in state: written by
// this process for exactly that state. Any other case — first sight of a
// key in this process, a restore from a checkpoint, another worker having
// written the key — rebuilds the copy from state. The copy is therefore a
// cache and carries no correctness: a stage with NoCache set rebuilds on
// every element and must give the same results (the tests check that).
//
// It is shared by the instances of one stage in a process because a runner
// may hand a key to any of them; an instance-local copy would miss (and
// rebuild a whole minute) nearly every time.

// maxCachedKeys bounds one stage's cached keys; an evicted key only costs a
// rebuild.
const maxCachedKeys = 1 << 14

type stateCache struct {
	mu sync.Mutex
	m  map[string]cacheEntry
}

type cacheEntry struct {
	version int64
	v       any
}

var stateCaches sync.Map // stage CacheID → *stateCache

func cacheOf(id string) *stateCache {
	c, _ := stateCaches.LoadOrStore(id, &stateCache{m: map[string]cacheEntry{}})
	return c.(*stateCache)
}

// take removes and returns key's copy if it is of version v.
func (c *stateCache) take(key string, v int64) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok {
		return nil, false
	}
	delete(c.m, key)
	return e.v, e.version == v
}

// put stores key's copy as of version v.
func (c *stateCache) put(key string, v int64, x any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCachedKeys {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[key] = cacheEntry{version: v, v: x}
}

func (c *stateCache) drop(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, key)
}

// newVersion returns a version for a state write: random, so that a state
// restored to an older write can never match a newer copy.
func newVersion() int64 {
	for {
		if v := rand.Int64(); v != 0 {
			return v
		}
	}
}

// newCacheID names one stage of one pipeline for stateCaches.
func newCacheID(stage string) string {
	return stage + "/" + randHex()
}

func randHex() string {
	const hex = "0123456789abcdef"
	b := make([]byte, 16)
	for i := range b {
		b[i] = hex[rand.IntN(16)]
	}
	return string(b)
}
