package result

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
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

// DigestB64Len is the length of a digest's compact form: its 16 bytes in
// base64url without padding. The results topic carries this form: a digest
// is random, so the producer's compression wins nothing back from hex, and
// the compact form is 10 of a record's ~55 compressed bytes fewer.
const DigestB64Len = 22

// digestB64 is strict so that one digest has one compact form (the 4
// unused bits must be zero).
var digestB64 = base64.RawURLEncoding.Strict()

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
	var raw [16]byte
	return hex.AppendEncode(b, d.AppendBytes(raw[:0]))
}

// String is the hex form, or "unknown".
func (d Digest) String() string {
	if !d.Known {
		return "unknown"
	}
	return string(d.AppendHex(nil))
}

// AppendBase64 appends the compact form (DigestB64Len characters).
func (d Digest) AppendBase64(b []byte) []byte {
	var raw [16]byte
	return digestB64.AppendEncode(b, d.AppendBytes(raw[:0]))
}

var errDigestForm = fmt.Errorf("not %d hex digits nor %d base64url characters", DigestLen, DigestB64Len)

// ParseDigest parses either text form: the 32 hex digits or the compact
// base64url one. Both are accepted wherever a digest is read, so a reader
// handles records written before and after the compact form alike.
func ParseDigest(s string) (Digest, error) {
	d, err := parseDigestText([]byte(s))
	if err != nil {
		return Digest{}, fmt.Errorf("result: digest %q: %w", s, err)
	}
	return d, nil
}

// parseDigestText is ParseDigest without allocating (the DB writer's fast
// path parses a digest from every record).
func parseDigestText(b []byte) (Digest, error) {
	var raw [16]byte
	switch len(b) {
	case DigestLen:
		if _, err := hex.Decode(raw[:], b); err != nil {
			return Digest{}, err
		}
	case DigestB64Len:
		n, err := digestB64.Decode(raw[:], b)
		if err != nil {
			return Digest{}, err
		}
		if n != len(raw) { // the decoder skips newlines
			return Digest{}, errors.New("a newline in a digest")
		}
	default:
		return Digest{}, errDigestForm
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
