package result

import "github.com/zeebo/xxh3"

// EventDigest is the digest of the one-element set {eventID}: the 128-bit
// XXH3 hash the aggregation deduplicates by. It lives here, not in the
// transforms, so that the aggregation and the readers that re-derive its
// digests from raw clicks (services/explain) share one definition and cannot
// drift apart; the transforms are Beam code those readers may not import.
func EventDigest(eventID string) Digest {
	h := xxh3.HashString128(eventID)
	return Digest{Hi: h.Hi, Lo: h.Lo, Known: true}
}
