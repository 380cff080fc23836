package result

import (
	"encoding/hex"
	"fmt"
	"math/bits"
)

// Digest is the order-independent fingerprint of the set of event ids a count
// counted: the sum modulo 2^128 of their 128-bit XXH3 hashes (the hashes the
// aggregation already deduplicates by). The digest of a union of disjoint sets
// is the sum of their digests, so every path — batch merge, streaming state,
// replay — reaches the same digest for the same set, in any order.
//
// Known is false for a count whose digest is not known (a record written
// before digests existed): that is "unknown", never the digest of the empty
// set, so it must not be compared or summed as one.
type Digest struct {
	Hi, Lo uint64
	Known  bool
}

// DigestLen is the length of a digest's hex form.
const DigestLen = 32

// Add returns the digest of the union of two disjoint sets; unknown (the
// zero Digest) if either is.
func (d Digest) Add(o Digest) Digest {
	if !d.Known || !o.Known {
		return Digest{}
	}
	lo, c := bits.Add64(d.Lo, o.Lo, 0)
	hi, _ := bits.Add64(d.Hi, o.Hi, c)
	return Digest{Hi: hi, Lo: lo, Known: true}
}

// Sub returns the digest of d's set without o's (o a subset of d's set);
// unknown if either is.
func (d Digest) Sub(o Digest) Digest {
	if !d.Known || !o.Known {
		return Digest{}
	}
	lo, b := bits.Sub64(d.Lo, o.Lo, 0)
	hi, _ := bits.Sub64(d.Hi, o.Hi, b)
	return Digest{Hi: hi, Lo: lo, Known: true}
}

// AppendHex appends the 32-hex-digit form (Hi then Lo, big-endian).
func (d Digest) AppendHex(b []byte) []byte {
	const digits = "0123456789abcdef"
	for _, w := range [2]uint64{d.Hi, d.Lo} {
		for s := 60; s >= 0; s -= 4 {
			b = append(b, digits[(w>>uint(s))&0xf])
		}
	}
	return b
}

// String is the hex form, or "unknown".
func (d Digest) String() string {
	if !d.Known {
		return "unknown"
	}
	return string(d.AppendHex(nil))
}

// ParseDigest parses the 32-hex-digit form.
func ParseDigest(s string) (Digest, error) {
	if len(s) != DigestLen {
		return Digest{}, fmt.Errorf("result: digest %q is not %d hex digits", s, DigestLen)
	}
	var raw [16]byte
	if _, err := hex.Decode(raw[:], []byte(s)); err != nil {
		return Digest{}, fmt.Errorf("result: digest %q: %w", s, err)
	}
	return DigestFromBytes(raw[:]), nil
}

// DigestFromBytes reads the 16-byte big-endian form (Bytes).
func DigestFromBytes(b []byte) Digest {
	var d Digest
	for i := 0; i < 8; i++ {
		d.Hi = d.Hi<<8 | uint64(b[i])
		d.Lo = d.Lo<<8 | uint64(b[8+i])
	}
	d.Known = true
	return d
}

// AppendBytes appends the 16-byte big-endian form.
func (d Digest) AppendBytes(b []byte) []byte {
	for _, w := range [2]uint64{d.Hi, d.Lo} {
		for s := 56; s >= 0; s -= 8 {
			b = append(b, byte(w>>uint(s)))
		}
	}
	return b
}
