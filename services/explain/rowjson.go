package explain

import (
	"time"

	"github.com/adclick/adclick/io/store"
)

// The JSON forms below are shared by the JSON-lines export and the admin
// clicks endpoint (queryapi), so an advertiser's file and the API agree
// field for field. Each carries "status": counted / not_counted for a click,
// minute for a minute's summary, total for the range's.

// ClickJSON is one listed raw click.
type ClickJSON struct {
	Status    Status `json:"status"`
	Reason    string `json:"reason,omitempty"`
	EventID   string `json:"event_id"`
	EventTime string `json:"event_time"` // RFC 3339 UTC, milliseconds
	AdID      string `json:"ad_id"`
	Country   string `json:"country,omitempty"`
	Device    string `json:"device,omitempty"`
	AdFormat  string `json:"ad_format,omitempty"`
	UserID    string `json:"user_id,omitempty"`
	IP        string `json:"ip,omitempty"`
}

// MinuteJSON is a minute's summary.
type MinuteJSON struct {
	Status       string `json:"status"` // "minute"
	Minute       string `json:"minute"`
	Generation   int64  `json:"generation"` // 0: live (streaming), else a replay
	Raw          int    `json:"raw_clicks"`
	Count        int64  `json:"count"`
	Digest       string `json:"digest"`
	StoredCount  int64  `json:"stored_count"`
	StoredDigest string `json:"stored_digest"` // "unknown": stored before digests
	TooLate      int    `json:"too_late"`
	Verdict      string `json:"verdict"`
}

// TotalJSON is the range's summary.
type TotalJSON struct {
	Status       string   `json:"status"` // "total"
	AdID         string   `json:"ad_id"`
	FilterID     string   `json:"filter_id,omitempty"`
	From         string   `json:"from"`
	To           string   `json:"to"`
	Raw          int      `json:"raw_clicks"`
	Count        int64    `json:"count"`
	Digest       string   `json:"digest"`
	StoredCount  int64    `json:"stored_count"`
	StoredDigest string   `json:"stored_digest"`
	TooLate      int      `json:"too_late"`
	Verdict      string   `json:"verdict"`
	Mismatched   []string `json:"mismatched_minutes,omitempty"`
	Unexplained  []string `json:"unexplained_minutes,omitempty"`
}

// TimeFormat is the export's event time: RFC 3339 UTC with milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// MinuteFormat is a minute's form.
const MinuteFormat = time.RFC3339

// JSON is the row's JSON form.
func (r *Row) JSON() ClickJSON {
	c := &r.Click
	return ClickJSON{Status: r.Status, Reason: r.Reason, EventID: c.EventID,
		EventTime: time.UnixMilli(c.Time).UTC().Format(TimeFormat), AdID: c.AdID,
		Country: c.Country, Device: c.Device, AdFormat: c.AdFormat, UserID: c.UserID, IP: c.IP}
}

// JSON is the summary's JSON form.
func (s *MinuteSummary) JSON() MinuteJSON {
	return MinuteJSON{Status: "minute", Minute: minuteRFC(s.Minute), Generation: int64(s.Generation),
		Raw: s.Raw, Count: s.Count, Digest: s.Digest.String(), StoredCount: s.StoredCount,
		StoredDigest: s.StoredDigest.String(), TooLate: s.TooLate, Verdict: string(s.Verdict)}
}

// JSON is the total's JSON form.
func (t *Total) JSON() TotalJSON {
	return TotalJSON{Status: "total", AdID: t.AdID, FilterID: t.FilterID, From: minuteRFC(t.From), To: minuteRFC(t.To),
		Raw: t.Raw, Count: t.Count, Digest: t.Digest.String(), StoredCount: t.StoredCount,
		StoredDigest: t.StoredDigest.String(), TooLate: t.TooLate, Verdict: string(t.Verdict),
		Mismatched: minutesRFC(t.Mismatched), Unexplained: minutesRFC(t.Unexplained)}
}

func minuteRFC(m int64) string { return time.Unix(m, 0).UTC().Format(MinuteFormat) }

func minutesRFC(ms []int64) []string {
	var out []string
	for _, m := range ms {
		out = append(out, minuteRFC(m))
	}
	return out
}

// Live reports whether the streaming job's generation serves the minute.
func (s *MinuteSummary) Live() bool { return s.Generation == store.LiveGeneration }
