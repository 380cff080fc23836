package cassandrastore

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"

	"github.com/adclick/adclick/io/store"
)

// Token ring of the Murmur3Partitioner: every partition's token lies in
// [MinToken, MaxToken] (Cassandra maps the hash math.MinInt64 to MaxInt64).
const (
	MinToken int64 = math.MinInt64 + 1
	MaxToken int64 = math.MaxInt64
)

// TokenRange is an inclusive range [Lo, Hi] of the ring. Its width does not
// fit an int64 (the whole ring is 2^64-1 tokens, and Hi-Lo overflows), so all
// arithmetic is done on offsets from math.MinInt64 as uint64: Beam's
// offsetrange restriction, which subtracts int64s, cannot hold it.
type TokenRange struct{ Lo, Hi int64 }

// FullRing is the whole token ring.
var FullRing = TokenRange{MinToken, MaxToken}

func off(t int64) uint64   { return uint64(t) ^ (1 << 63) }
func unoff(o uint64) int64 { return int64(o ^ (1 << 63)) }

// Contains reports whether t lies in the range.
func (r TokenRange) Contains(t int64) bool { return t >= r.Lo && t <= r.Hi }

// Split cuts the range into n contiguous inclusive ranges of near-equal
// width (fewer if the range holds fewer than n tokens).
func (r TokenRange) Split(n int) []TokenRange {
	if n < 1 || r.Lo > r.Hi {
		return nil
	}
	width := off(r.Hi) - off(r.Lo) // tokens - 1; never overflows
	if uint64(n-1) > width {
		n = int(width + 1)
	}
	out := make([]TokenRange, 0, n)
	lo := off(r.Lo)
	for i := 1; i <= n; i++ {
		hi := off(r.Hi)
		if i < n {
			// lo0 + floor((width+1) * i / n) - 1, in 128-bit arithmetic.
			h, l := bits.Mul64(width, uint64(i))
			l, c := bits.Add64(l, uint64(i), 0)
			h += c
			q, _ := bits.Div64(h, l, uint64(n))
			hi = off(r.Lo) + q - 1
		}
		out = append(out, TokenRange{unoff(lo), unoff(hi)})
		lo = hi + 1
	}
	return out
}

// encode/decode a range as a Shard token (16 bytes).
func (r TokenRange) encode() []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(r.Lo))
	return binary.BigEndian.AppendUint64(b, uint64(r.Hi))
}

func decodeRange(b []byte) (TokenRange, error) {
	if len(b) != 16 {
		return TokenRange{}, fmt.Errorf("%w: cassandrastore: shard token is %d bytes, want 16", store.ErrInvalid, len(b))
	}
	r := TokenRange{int64(binary.BigEndian.Uint64(b)), int64(binary.BigEndian.Uint64(b[8:]))}
	if r.Lo > r.Hi || r.Lo < MinToken {
		return TokenRange{}, fmt.Errorf("%w: cassandrastore: bad shard token range [%d, %d]", store.ErrInvalid, r.Lo, r.Hi)
	}
	return r, nil
}

// PartitionToken is the Murmur3Partitioner token of the raw_clicks partition
// (ad_id, hour): Murmur3 x64-128's first half over the composite key
// serialization (each component: 2-byte length, bytes, 0x00). Tests check it
// against Cassandra's token() function.
func PartitionToken(adID string, hour int64) int64 {
	b := make([]byte, 0, len(adID)+16)
	b = binary.BigEndian.AppendUint16(b, uint16(len(adID)))
	b = append(b, adID...)
	b = append(b, 0)
	b = binary.BigEndian.AppendUint16(b, 8)
	b = binary.BigEndian.AppendUint64(b, uint64(hour))
	b = append(b, 0)
	h := murmur3H1(b)
	if h == math.MinInt64 {
		return math.MaxInt64
	}
	return h
}

// murmur3H1 is the first 64 bits of MurmurHash3 x64-128 (seed 0) as
// Cassandra computes it: tail bytes are sign-extended (Java bytes).
func murmur3H1(data []byte) int64 {
	const (
		c1 = 0x87c37b91114253d5
		c2 = 0x4cf5ad432745937f
	)
	var h1, h2 uint64
	n := len(data)
	nblocks := n / 16
	for i := 0; i < nblocks; i++ {
		k1 := binary.LittleEndian.Uint64(data[i*16:])
		k2 := binary.LittleEndian.Uint64(data[i*16+8:])
		k1 *= c1
		k1 = bits.RotateLeft64(k1, 31)
		k1 *= c2
		h1 ^= k1
		h1 = bits.RotateLeft64(h1, 27)
		h1 += h2
		h1 = h1*5 + 0x52dce729
		k2 *= c2
		k2 = bits.RotateLeft64(k2, 33)
		k2 *= c1
		h2 ^= k2
		h2 = bits.RotateLeft64(h2, 31)
		h2 += h1
		h2 = h2*5 + 0x38495ab5
	}
	tail := data[nblocks*16:]
	sx := func(i int) uint64 { return uint64(int64(int8(tail[i]))) }
	var k1, k2 uint64
	for i := len(tail) - 1; i >= 8; i-- {
		k2 ^= sx(i) << (8 * uint(i-8))
	}
	if len(tail) > 8 {
		k2 *= c2
		k2 = bits.RotateLeft64(k2, 33)
		k2 *= c1
		h2 ^= k2
	}
	for i := min(len(tail), 8) - 1; i >= 0; i-- {
		k1 ^= sx(i) << (8 * uint(i))
	}
	if len(tail) > 0 {
		k1 *= c1
		k1 = bits.RotateLeft64(k1, 31)
		k1 *= c2
		h1 ^= k1
	}
	h1 ^= uint64(n)
	h2 ^= uint64(n)
	h1 += h2
	h2 += h1
	h1 = fmix64(h1)
	h2 = fmix64(h2)
	h1 += h2
	return int64(h1)
}

func fmix64(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	return k
}
