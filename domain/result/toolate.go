package result

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/adclick/adclick/domain/click"
)

// TooLate is the streaming job's record of the clicks of one ad and minute
// it left out as too late (docs/spec.md §2): the event-id hashes
// (EventDigest) of those clicks. The decision is made against the source
// watermark in the fused stage and nowhere else, so without this record a
// reader of the raw store (services/explain) could only guess which of a
// live minute's clicks the job did not count.
//
// Unlike the other records it is not an accumulating value: the records of
// one (ad, minute) — from several bundles, or one bundle's split at
// MaxTooLateHashes — add up (a set union), and a record delivered twice
// changes nothing. It is not an aggregate and never goes to an aggregate
// store's Upsert or Merge.
type TooLate struct {
	AdID   string
	Minute int64
	Hashes []Digest // 1..MaxTooLateHashes, each known
}

// MaxTooLateHashes bounds one record: a larger set is sent as several
// records of the same key (about 34 bytes of JSON per hash, so a record
// stays well under Kafka's default 1 MB message size).
const MaxTooLateHashes = 1000

// TypeTooLate is the JSON Lines type tag of a TooLate record.
const TypeTooLate = "too_late"

// tooLateKey is the Key of a TooLate record: stable per (ad, minute), so
// every record of one lands on one partition of the results topic.
func tooLateKey(t *TooLate) string {
	return "l/" + strconv.FormatInt(t.Minute, 10) + "/" + t.AdID
}

// SplitTooLate returns the records holding hashes for one (ad, minute), at
// most MaxTooLateHashes each; none for no hashes.
func SplitTooLate(adID string, minute int64, hashes []Digest) []Record {
	var out []Record
	for len(hashes) > 0 {
		n := min(len(hashes), MaxTooLateHashes)
		out = append(out, Record{TooLate: &TooLate{AdID: adID, Minute: minute, Hashes: hashes[:n:n]}})
		hashes = hashes[n:]
	}
	return out
}

func appendTooLate(b []byte, t *TooLate) []byte {
	b = append(b, `{"type":"too_late","ad_id":`...)
	b = click.AppendJSONString(b, t.AdID)
	b = appendMinute(b, t.Minute)
	b = append(b, `,"hashes":[`...)
	for i, h := range t.Hashes {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = h.AppendHex(b)
		b = append(b, '"')
	}
	return append(b, ']')
}

// parseTooLate builds a TooLate record from its wire form.
func parseTooLate(w *wire, minute int64) (*TooLate, error) {
	if w.AdID == "" || len(w.Hashes) == 0 {
		return nil, errors.New("result: too_late record needs ad_id and hashes")
	}
	if len(w.Hashes) > MaxTooLateHashes {
		return nil, fmt.Errorf("result: too_late record has %d hashes, at most %d allowed", len(w.Hashes), MaxTooLateHashes)
	}
	t := &TooLate{AdID: w.AdID, Minute: minute, Hashes: make([]Digest, len(w.Hashes))}
	for i, s := range w.Hashes {
		d, err := ParseDigest(s)
		if err != nil {
			return nil, fmt.Errorf("result: too_late hash %d: %w", i, err)
		}
		t.Hashes[i] = d
	}
	return t, nil
}
