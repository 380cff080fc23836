package explain

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Formats of Export.
var Formats = []string{"text", "jsonl", "csv"}

// Exporter writes a listing in one format: per minute its counted clicks,
// then its not-counted ones (status column), then the minute's summary;
// the range's total last. Minutes without raw clicks or stored count that
// match are left out of the listing (not of the total).
type Exporter struct {
	format string
	bw     *bufio.Writer
	cw     *csv.Writer
	je     *json.Encoder
}

// csvHeader is the CSV export's columns; click rows fill the first ten and
// their minute, summary rows the status, minute (or range) and the figures.
var csvHeader = []string{"status", "reason", "event_id", "event_time", "ad_id", "country", "device", "ad_format",
	"user_id", "ip", "minute", "count", "digest", "stored_count", "stored_digest", "verdict"}

// NewExporter starts an export in format (one of Formats) to w.
func NewExporter(w io.Writer, format string) (*Exporter, error) {
	e := &Exporter{format: format, bw: bufio.NewWriterSize(w, 64<<10)}
	switch format {
	case "text":
	case "jsonl":
		e.je = json.NewEncoder(e.bw)
		e.je.SetEscapeHTML(false)
	case "csv":
		e.cw = csv.NewWriter(e.bw)
		if err := e.cw.Write(csvHeader); err != nil {
			return nil, fmt.Errorf("explain: export: %w", err)
		}
	default:
		return nil, fmt.Errorf("%w: format %q: use one of %s", ErrInvalid, format, strings.Join(Formats, ", "))
	}
	return e, nil
}

// Minute writes one minute's rows and summary.
func (e *Exporter) Minute(m *Minute) error {
	s := &m.Summary
	if s.Raw == 0 && s.StoredCount == 0 && s.Verdict == Match {
		return nil
	}
	for i := range m.Rows {
		if err := e.row(&m.Rows[i]); err != nil {
			return err
		}
	}
	return e.summary(s)
}

func (e *Exporter) row(r *Row) error {
	j := r.JSON()
	var err error
	switch e.format {
	case "jsonl":
		err = e.je.Encode(j)
	case "csv":
		err = e.cw.Write([]string{string(j.Status), cell(j.Reason), cell(j.EventID), j.EventTime, cell(j.AdID), cell(j.Country), cell(j.Device),
			cell(j.AdFormat), cell(j.UserID), cell(j.IP), minuteRFC(r.Click.Minute()), "", "", "", "", ""})
	default:
		_, err = fmt.Fprintf(e.bw, "  %-11s %s  %s  country=%q device=%q ad_format=%q  %s\n",
			strings.ReplaceAll(string(j.Status), "_", " "), j.EventTime, j.EventID, j.Country, j.Device, j.AdFormat, j.Reason)
	}
	if err != nil {
		return fmt.Errorf("explain: export: %w", err)
	}
	return nil
}

func (e *Exporter) summary(s *MinuteSummary) error {
	j := s.JSON()
	var err error
	switch e.format {
	case "jsonl":
		err = e.je.Encode(j)
	case "csv":
		err = e.cw.Write([]string{"minute", "", "", "", "", "", "", "", "", "", j.Minute,
			strconv.FormatInt(j.Count, 10), j.Digest, strconv.FormatInt(j.StoredCount, 10), j.StoredDigest, j.Verdict})
	default:
		gen := "live (streaming)"
		if !s.Live() {
			gen = "replay generation " + strconv.FormatInt(j.Generation, 10)
		}
		_, err = fmt.Fprintf(e.bw, "minute %s (%s): recounted %d digest %s; stored %d digest %s; %d too late: %s\n\n",
			j.Minute, gen, j.Count, j.Digest, j.StoredCount, j.StoredDigest, j.TooLate, j.Verdict)
	}
	if err != nil {
		return fmt.Errorf("explain: export: %w", err)
	}
	return nil
}

// Total writes the range's summary and flushes.
func (e *Exporter) Total(t *Total) error {
	j := t.JSON()
	var err error
	switch e.format {
	case "jsonl":
		err = e.je.Encode(j)
	case "csv":
		err = e.cw.Write([]string{"total", differing(j), "", "", cell(j.AdID), "", "", "", "", "", j.From + "/" + j.To,
			strconv.FormatInt(j.Count, 10), j.Digest, strconv.FormatInt(j.StoredCount, 10), j.StoredDigest, j.Verdict})
		if err == nil {
			e.cw.Flush()
			err = e.cw.Error()
		}
	default:
		_, err = fmt.Fprintf(e.bw, "total %s filter %q [%s, %s): recounted %d digest %s; stored %d digest %s; %d too late: %s\n",
			j.AdID, j.FilterID, j.From, j.To, j.Count, j.Digest, j.StoredCount, j.StoredDigest, j.TooLate, j.Verdict)
		if err == nil && j.Verdict != string(Match) {
			_, err = fmt.Fprintf(e.bw, "%s\n", differing(j))
		}
	}
	if err == nil {
		err = e.bw.Flush()
	}
	if err != nil {
		return fmt.Errorf("explain: export: %w", err)
	}
	return nil
}

// cell guards a CSV value from the producers of clicks against spreadsheet
// formula injection: a value starting with = + - @ or a tab or carriage
// return gets a leading apostrophe, which spreadsheets show as text (the
// JSON-lines export keeps values as they are).
func cell(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

// differing names the minutes that differ.
func differing(j TotalJSON) string {
	var parts []string
	if len(j.Mismatched) > 0 {
		parts = append(parts, "mismatched minutes: "+strings.Join(j.Mismatched, " "))
	}
	if len(j.Unexplained) > 0 {
		parts = append(parts, "unexplained live minutes (stored differs from the recount by more than 2 clicks the digests can identify as too late, or not by too-late clicks at all): "+strings.Join(j.Unexplained, " "))
	}
	return strings.Join(parts, "; ")
}
