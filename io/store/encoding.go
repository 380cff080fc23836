package store

import (
	"encoding/binary"
	"errors"

	"github.com/adclick/adclick/domain/result"
)

// AppendTopAds appends the compact binary form of a top-N list that both
// backends store as one value: uvarint n, then n × (uvarint len, ad id,
// uvarint count). One value per (window, minute) keeps a top list an atomic
// overwrite.
func AppendTopAds(b []byte, ads []result.AdCount) []byte {
	b = binary.AppendUvarint(b, uint64(len(ads)))
	for _, a := range ads {
		b = binary.AppendUvarint(b, uint64(len(a.AdID)))
		b = append(b, a.AdID...)
		b = binary.AppendUvarint(b, uint64(a.Count))
	}
	return b
}

var errBadTop = errors.New("store: corrupt top list value")

// DecodeTopAds parses AppendTopAds' form. The result is never nil.
func DecodeTopAds(v []byte) ([]result.AdCount, error) {
	n, w := binary.Uvarint(v)
	if w <= 0 || n > uint64(len(v)) {
		return nil, errBadTop
	}
	v = v[w:]
	ads := make([]result.AdCount, 0, n)
	for i := uint64(0); i < n; i++ {
		l, w := binary.Uvarint(v)
		if w <= 0 || uint64(len(v)-w) < l {
			return nil, errBadTop
		}
		id := string(v[w : w+int(l)])
		v = v[w+int(l):]
		c, w2 := binary.Uvarint(v)
		if w2 <= 0 {
			return nil, errBadTop
		}
		v = v[w2:]
		ads = append(ads, result.AdCount{AdID: id, Count: int64(c)})
	}
	return ads, nil
}
