package pebblestore

import (
	"encoding/binary"
	"errors"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/io/store"
)

// Key prefixes; the layout is in the package doc.
const (
	pRaw   = 'r'
	pCount = 'c'
	pTop   = 't'
	pMeta  = 'm'
	// pTooLate: the streaming job's too-late decisions (toolate.go).
	pTooLate = 'l'
)

func putI64(b []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(b, uint64(v)^(1<<63))
}

func getI64(b []byte) int64 { return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)) }

func putStr(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func getStr(b []byte) (string, []byte, bool) {
	if len(b) < 2 {
		return "", nil, false
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+n {
		return "", nil, false
	}
	return string(b[2 : 2+n]), b[2+n:], true
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func hourOf(minute int64) int64 { return floorDiv(minute, 3600) * 3600 }

func rawKey(b []byte, c *click.Click) []byte {
	b = append(b, pRaw)
	b = putI64(b, c.Time)
	b = putStr(b, c.AdID)
	return append(b, c.EventID...)
}

func rawTimeKey(ms int64) []byte { return putI64([]byte{pRaw}, ms) }

func rawValue(b []byte, c *click.Click) []byte {
	for _, s := range [...]string{c.UserID, c.IP, c.Country, c.Device, c.AdFormat} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

func decodeRaw(k, v []byte) (click.Click, error) {
	var c click.Click
	if len(k) < 9 {
		return c, errors.New("short raw key")
	}
	c.Time = getI64(k[1:9])
	ad, rest, ok := getStr(k[9:])
	if !ok {
		return c, errors.New("bad raw key")
	}
	c.AdID, c.EventID = ad, string(rest)
	fields := [...]*string{&c.UserID, &c.IP, &c.Country, &c.Device, &c.AdFormat}
	for _, f := range fields {
		n, w := binary.Uvarint(v)
		if w <= 0 || uint64(len(v)-w) < n {
			return c, errors.New("bad raw value")
		}
		*f = string(v[w : w+int(n)])
		v = v[w+int(n):]
	}
	return c, nil
}

func countPrefix(b []byte, gen store.Generation, hour int64) []byte {
	b = append(b, pCount)
	b = putI64(b, int64(gen))
	return putI64(b, hour)
}

func countKey(b []byte, gen store.Generation, ad, filter string, minute int64) []byte {
	b = countPrefix(b, gen, hourOf(minute))
	b = putStr(b, ad)
	b = putStr(b, filter)
	return putI64(b, minute)
}

func topKey(b []byte, gen store.Generation, window int, minute int64) []byte {
	b = topPrefix(b, gen, window)
	return putI64(b, minute)
}

func topPrefix(b []byte, gen store.Generation, window int) []byte {
	b = append(b, pTop)
	b = putI64(b, int64(gen))
	return binary.BigEndian.AppendUint32(b, uint32(window))
}

func genKey(gen store.Generation) []byte { return putI64([]byte{pMeta, 'g'}, int64(gen)) }

// prefixEnd is the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}
