package transforms

import (
	"encoding/binary"
	"math"
)

// TopBase is the streaming top stage's compacted state: the ad table's
// names by index ("" for a free index) and, per minute held, each ad's index
// and count. An entry is two varints, ~4 bytes, where the ad's string in
// every minute took ~13: the base is rewritten at every compaction and held
// by the runner, so its size is the stage's memory twice over.
type TopBase struct {
	Ads     []string
	Minutes []TopMinute
}

// TopMinute is one minute of TopBase: Counts[k] is the count of the ad at
// index Ads[k].
type TopMinute struct {
	Minute int64
	Ads    []uint32
	Counts []uint32
}

// maxTopCount is the largest count one (minute, ad) holds in the top stage:
// 4,294,967,295 clicks of one ad in one minute (71M a second). A larger
// count is clamped, and only for ranking; the count records are int64.
const maxTopCount = math.MaxUint32

func encodeTopBase(s TopBase) ([]byte, error) {
	b := binary.AppendUvarint(nil, uint64(len(s.Ads)))
	for _, ad := range s.Ads {
		b = binary.AppendUvarint(b, uint64(len(ad)))
		b = append(b, ad...)
	}
	b = binary.AppendUvarint(b, uint64(len(s.Minutes)))
	for _, m := range s.Minutes {
		b = binary.AppendVarint(b, m.Minute)
		b = binary.AppendUvarint(b, uint64(len(m.Ads)))
		for k, i := range m.Ads {
			b = binary.AppendUvarint(b, uint64(i))
			b = binary.AppendUvarint(b, uint64(m.Counts[k]))
		}
	}
	return b, nil
}

func decodeTopBase(b []byte) (TopBase, error) {
	d := recReader{b: b}
	var s TopBase
	n := d.length()
	s.Ads = make([]string, 0, n)
	for range n {
		l := d.length()
		if d.err != nil {
			break
		}
		s.Ads = append(s.Ads, string(d.b[:l]))
		d.b = d.b[l:]
	}
	n = d.length()
	s.Minutes = make([]TopMinute, 0, n)
	for range n {
		m := TopMinute{Minute: d.varint()}
		k := d.length()
		m.Ads, m.Counts = make([]uint32, 0, k), make([]uint32, 0, k)
		for range k {
			i, c := d.uvarint(), d.uvarint()
			if i >= uint64(len(s.Ads)) || c > maxTopCount {
				d.err = errCorruptRecord
			}
			if d.err != nil {
				return TopBase{}, d.err
			}
			m.Ads, m.Counts = append(m.Ads, uint32(i)), append(m.Counts, uint32(c))
		}
		s.Minutes = append(s.Minutes, m)
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = errCorruptRecord
	}
	if d.err != nil {
		return TopBase{}, d.err
	}
	return s, nil
}
