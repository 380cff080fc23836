package cassandrastore

import (
	"hash/fnv"
	"time"
)

// Partition keys: raw clicks by event hour, aggregates by day, and the
// count_series index in 16 buckets of ad ids.

func hourOf(ms int64) int64 { return floorDiv(floorDiv(ms, 1000), 3600) * 3600 }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// ceilMS is the first whole millisecond at or after t.
func ceilMS(t time.Time) int64 {
	ms := t.UnixMilli()
	if t.Sub(time.UnixMilli(ms)) > 0 {
		ms++
	}
	return ms
}

const day = 86400

func dayOf(minute int64) int64 { return floorDiv(minute, day) * day }

func bucketOf(ad string) int {
	h := fnv.New32a()
	h.Write([]byte(ad))
	return int(h.Sum32() % 16)
}
