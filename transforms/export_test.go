package transforms

// DisableStateCache makes the streaming stages rebuild their state from Beam
// state on every element, for tests that show the cache carries no
// correctness.
func DisableStateCache(c *Config) { c.noStateCache = true }
