package pebblestore

import (
	"encoding/binary"

	"github.com/adclick/adclick/domain/result"
)

// A count's value: uvarint count, then — from version 1 on — the version
// byte and the digest's 16 bytes. A value of the first version (written
// before digests) is the bare uvarint; it still reads, with the digest
// unknown. Readers that only need the count read the leading uvarint of
// either form.
const countValueV1 byte = 1

func appendCountValue(b []byte, n int64, d result.Digest) []byte {
	b = binary.AppendUvarint(b, uint64(n))
	if !d.Known {
		return b
	}
	return d.AppendBytes(append(b, countValueV1))
}

// decodeCountValue parses either version; ok is false for a corrupt value.
func decodeCountValue(v []byte) (n int64, d result.Digest, ok bool) {
	c, w := binary.Uvarint(v)
	if w <= 0 {
		return 0, result.Digest{}, false
	}
	rest := v[w:]
	switch {
	case len(rest) == 0:
		return int64(c), result.Digest{}, true
	case len(rest) == 17 && rest[0] == countValueV1:
		return int64(c), result.DigestFromBytes(rest[1:]), true
	}
	return 0, result.Digest{}, false
}
