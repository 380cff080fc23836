// Package result is a leaf domain package, plain Go without Beam: the
// aggregation results of docs/spec.md §4 — per-ad counts, per-filter counts
// and top-N lists for one minute — and their JSON Lines form.
//
// These are what the pipeline emits, what travels on the aggregation topic and
// what the stores upsert. Every count and top list is an accumulating value: a
// later record with the same Key replaces an earlier one. The streaming job's
// TooLate records travel with them but are no aggregate: the records of one
// Key add up (toolate.go).
package result

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/adclick/adclick/domain/click"
)

// AdCount is one entry of a top-N list.
type AdCount struct {
	AdID  string `json:"ad_id"`
	Count int64  `json:"count"`
}

// Count is the number of unique clicks of an ad in one event-time minute.
// Minute is the window start in Unix seconds.
type Count struct {
	AdID   string
	Minute int64
	Count  int64
	Digest Digest // of the counted event ids; travels with Count
}

// FilteredCount is Count restricted to one attribute value, e.g. "country:US".
type FilteredCount struct {
	AdID     string
	FilterID string
	Minute   int64
	Count    int64
	Digest   Digest // of the counted event ids; travels with Count
}

// Top is the top-N list of ads for the WindowSize minutes ending with Minute
// (window [Minute-(WindowSize-1) min, Minute+1 min)), ordered by count
// descending, then ad_id ascending.
type Top struct {
	WindowSize int
	Minute     int64
	Ads        []AdCount
}

// Type tags of the JSON Lines form.
const (
	TypeCount    = "count"
	TypeFiltered = "filtered_count"
	TypeTop      = "top"
)

// Record is any one result: exactly one of the pointers is set.
type Record struct {
	Count    *Count
	Filtered *FilteredCount
	Top      *Top
	TooLate  *TooLate // not an aggregate; see TooLate
}

// Key identifies the stored value a record overwrites (for a TooLate
// record, the set it adds to).
func (r Record) Key() string {
	switch {
	case r.Count != nil:
		return "c/" + strconv.FormatInt(r.Count.Minute, 10) + "/" + r.Count.AdID
	case r.Filtered != nil:
		return "f/" + strconv.FormatInt(r.Filtered.Minute, 10) + "/" + r.Filtered.FilterID + "/" + r.Filtered.AdID
	case r.Top != nil:
		return "t/" + strconv.FormatInt(r.Top.Minute, 10) + "/" + strconv.Itoa(r.Top.WindowSize)
	case r.TooLate != nil:
		return tooLateKey(r.TooLate)
	}
	return ""
}

// FormatMinute renders a minute (Unix seconds) as RFC 3339 UTC.
func FormatMinute(m int64) string { return time.Unix(m, 0).UTC().Format(time.RFC3339) }

type wire struct {
	Type       string    `json:"type"`
	WindowSize int       `json:"window_size,omitempty"`
	AdID       string    `json:"ad_id,omitempty"`
	FilterID   string    `json:"filter_id,omitempty"`
	Minute     string    `json:"minute"`
	Count      *int64    `json:"count,omitempty"`
	Digest     string    `json:"digest,omitempty"`
	Ads        []AdCount `json:"ads,omitempty"`
	Hashes     []string  `json:"hashes,omitempty"`
}

// MarshalJSON renders the docs/spec.md §4 record.
func (r Record) MarshalJSON() ([]byte, error) {
	if r.Count == nil && r.Filtered == nil && r.Top == nil && r.TooLate == nil {
		return nil, errors.New("result: empty record")
	}
	return r.AppendJSON(nil), nil
}

// AppendJSON appends the docs/spec.md §4 form of r (an empty record appends "{}").
// Written by hand: results are encoded once per pane on the hot output path.
func (r Record) AppendJSON(b []byte) []byte { return r.appendJSON(b, false) }

// AppendTopicJSON is AppendJSON with a count's digest in its compact form
// (DigestB64Len characters): what the streaming job writes to the results
// topic, where digests were half of the compressed bytes (docs/spec.md §4).
// UnmarshalJSON reads both forms.
func (r Record) AppendTopicJSON(b []byte) []byte { return r.appendJSON(b, true) }

func (r Record) appendJSON(b []byte, compact bool) []byte {
	minute := appendMinute
	switch {
	case r.Count != nil:
		b = append(b, `{"type":"count","ad_id":`...)
		b = click.AppendJSONString(b, r.Count.AdID)
		b = minute(b, r.Count.Minute)
		b = append(b, `,"count":`...)
		b = strconv.AppendInt(b, r.Count.Count, 10)
		b = appendDigest(b, r.Count.Digest, compact)
	case r.Filtered != nil:
		b = append(b, `{"type":"filtered_count","ad_id":`...)
		b = click.AppendJSONString(b, r.Filtered.AdID)
		b = append(b, `,"filter_id":`...)
		b = click.AppendJSONString(b, r.Filtered.FilterID)
		b = minute(b, r.Filtered.Minute)
		b = append(b, `,"count":`...)
		b = strconv.AppendInt(b, r.Filtered.Count, 10)
		b = appendDigest(b, r.Filtered.Digest, compact)
	case r.Top != nil:
		b = append(b, `{"type":"top","window_size":`...)
		b = strconv.AppendInt(b, int64(r.Top.WindowSize), 10)
		b = minute(b, r.Top.Minute)
		b = append(b, `,"ads":[`...)
		for i, a := range r.Top.Ads {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"ad_id":`...)
			b = click.AppendJSONString(b, a.AdID)
			b = append(b, `,"count":`...)
			b = strconv.AppendInt(b, a.Count, 10)
			b = append(b, '}')
		}
		b = append(b, ']')
	case r.TooLate != nil:
		b = appendTooLate(b, r.TooLate)
	default:
		b = append(b, '{')
	}
	return append(b, '}')
}

func appendMinute(b []byte, m int64) []byte {
	b = append(b, `,"minute":"`...)
	b = time.Unix(m, 0).UTC().AppendFormat(b, time.RFC3339)
	return append(b, '"')
}

// appendDigest appends the digest field, hex or compact; an unknown digest
// is left out (and parses back as unknown, not as the empty set's).
func appendDigest(b []byte, d Digest, compact bool) []byte {
	if !d.Known {
		return b
	}
	b = append(b, `,"digest":"`...)
	if compact {
		b = d.AppendBase64(b)
	} else {
		b = d.AppendHex(b)
	}
	return append(b, '"')
}

// UnmarshalJSON parses a docs/spec.md §4 record.
func (r *Record) UnmarshalJSON(b []byte) error {
	if rec, ok := decodeCounts(b); ok {
		*r = rec
		return nil
	}
	var w wire
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("result: %w", err)
	}
	t, err := time.Parse(time.RFC3339, w.Minute)
	if err != nil {
		return fmt.Errorf("result: minute: %w", err)
	}
	if t.Unix()%60 != 0 {
		return fmt.Errorf("result: minute %q is not a minute start", w.Minute)
	}
	m := t.Unix()
	var d Digest
	if w.Digest != "" {
		if d, err = ParseDigest(w.Digest); err != nil {
			return err
		}
	}
	*r = Record{}
	switch w.Type {
	case TypeCount:
		if w.AdID == "" || w.Count == nil {
			return errors.New("result: count record needs ad_id and count")
		}
		r.Count = &Count{AdID: w.AdID, Minute: m, Count: *w.Count, Digest: d}
	case TypeFiltered:
		if w.AdID == "" || w.FilterID == "" || w.Count == nil {
			return errors.New("result: filtered_count record needs ad_id, filter_id and count")
		}
		r.Filtered = &FilteredCount{AdID: w.AdID, FilterID: w.FilterID, Minute: m, Count: *w.Count, Digest: d}
	case TypeTop:
		if w.WindowSize <= 0 {
			return errors.New("result: top record needs a positive window_size")
		}
		r.Top = &Top{WindowSize: w.WindowSize, Minute: m, Ads: w.Ads}
	case TypeTooLate:
		if r.TooLate, err = parseTooLate(&w, m); err != nil {
			return err
		}
	default:
		return fmt.Errorf("result: unknown record type %q", w.Type)
	}
	return nil
}

// Less orders top-N entries: count descending, then ad_id ascending (docs/spec.md §2).
func Less(a, b AdCount) bool {
	if a.Count != b.Count {
		return a.Count > b.Count
	}
	return a.AdID < b.AdID
}

// Filter dimensions (docs/spec.md §2) and the click attribute each one reads.
const (
	DimCountry = "country"
	DimDevice  = "device"
	DimFormat  = "format"
)

// Dimensions lists the filter dimensions.
var Dimensions = []string{DimCountry, DimDevice, DimFormat}

// FilterID builds "dim:value".
func FilterID(dim, value string) string { return dim + ":" + value }
