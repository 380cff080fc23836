package queryapi

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/services/explain"
)

// Clicks is the hook of GET /admin/ads/{ad_id}/clicks (the clicks behind a
// count, docs/spec.md §6): the serving process provides it over its store
// (explain.Service); a server without one answers 501. Errors wrapping
// store.ErrInvalid are 400, store.ErrUnavailable 503.
type Clicks interface {
	Explainer(ctx context.Context, adID, filterID string, from, to int64) (*explain.Explainer, error)
}

// Limits of the clicks endpoint: rows per page, and the longest range (the
// last page recounts the whole range for the totals).
const (
	DefaultClicksLimit = 1000
	MaxClicksLimit     = 10000
	MaxClicksRange     = 24 * 60 * 60
	clicksWriteTimeout = 5 * time.Minute
)

// clicksPage is the position a page starts at: a minute of the range and a
// row of that minute's listing (counted rows first, each part in event
// time order, so positions are stable while the raw clicks are).
type clicksPage struct{ minute, pos int64 }

// encode is the opaque page token.
func (p clicksPage) encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte("v1." + strconv.FormatInt(p.minute, 10) + "." + strconv.FormatInt(p.pos, 10)))
}

// parsePageToken checks a token against the request's range.
func parsePageToken(v string, from, to int64) (clicksPage, error) {
	bad := badParam("page_token: %s is not a page token of this range: pass next_page_token unchanged", quote(v))
	raw, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return clicksPage{}, bad
	}
	parts := strings.Split(string(raw), ".")
	if len(parts) != 3 || parts[0] != "v1" || !isDigits(parts[1]) || !isDigits(parts[2]) || len(parts[1]) > 12 || len(parts[2]) > 9 {
		return clicksPage{}, bad
	}
	m, _ := strconv.ParseInt(parts[1], 10, 64)
	pos, _ := strconv.ParseInt(parts[2], 10, 64)
	if m < from || m >= to || m%60 != 0 {
		return clicksPage{}, bad
	}
	return clicksPage{minute: m, pos: pos}, nil
}

// clicksQuery is a checked request.
type clicksQuery struct {
	adID, filterID string
	from, to       int64
	page           clicksPage
	limit          int
}

func parseClicksQuery(r *http.Request, q map[string]string) (clicksQuery, error) {
	var c clicksQuery
	adID, err := pathParam(r, "ad_id")
	if err == nil {
		err = checkID("ad_id", adID)
	}
	if err != nil {
		return c, err
	}
	c.adID = adID
	if c.from, err = parseMinute("from", q["from"]); err != nil {
		return c, err
	}
	if c.to, err = parseMinute("to", q["to"]); err != nil {
		return c, err
	}
	switch {
	case c.from >= c.to:
		return c, badParam("from must be before to (the range is [from, to))")
	case c.to-c.from > MaxClicksRange:
		return c, badParam("the range is longer than %d minutes (one day): ask for one day at a time", MaxClicksRange/60)
	}
	if v := q["filter_id"]; v != "" {
		if c.filterID, err = parseFilterID(v); err != nil {
			return c, err
		}
	}
	c.limit = DefaultClicksLimit
	if v, ok := q["limit"]; ok {
		if c.limit, err = parseSmallInt("limit", v); err != nil {
			return c, err
		}
		if c.limit < 1 || c.limit > MaxClicksLimit {
			return c, badParam("limit: %d must be between 1 and %d", c.limit, MaxClicksLimit)
		}
	}
	c.page = clicksPage{minute: c.from}
	if v, ok := q["page_token"]; ok {
		if c.page, err = parsePageToken(v, c.from, c.to); err != nil {
			return c, err
		}
	}
	return c, nil
}

// clicks answers GET /admin/ads/{ad_id}/clicks: one page of the listing,
// streamed row by row, with the summaries of the minutes the page finished
// and, on the last page, the range's totals and verdict.
func (s *Server) clicks(w http.ResponseWriter, r *http.Request, q map[string]string) {
	if s.cfg.Clicks == nil {
		notInBuild(w)
		return
	}
	c, err := parseClicksQuery(r, q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx := r.Context()
	ex, err := s.cfg.Clicks.Explainer(ctx, c.adID, c.filterID, c.from, c.to)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// The first minute is read before the status is sent, so that a store
	// that is down is a 503, not a cut-off body.
	first, err := ex.Minute(ctx, c.page.minute)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// The server's write timeout is sized for one store call; a page, and
	// the last page's recount of up to a day, may take longer. Where the
	// writer cannot move it (a test recorder) there is none to move.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(clicksWriteTimeout))
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	pw := &pageWriter{bw: bufio.NewWriterSize(w, 32<<10), limit: c.limit}
	if err := pw.run(ctx, ex, c, first); err != nil {
		// The status is sent: the body ends cut off (not valid JSON), which
		// a client cannot take for a complete page.
		s.log.LogAttrs(ctx, slog.LevelWarn, "clicks page cut off", slog.String("request_id", requestIDOf(ctx)), slog.Any("err", err))
	}
}

// pageSummary is what one page listed.
type pageSummary struct {
	Clicks     int    `json:"clicks"`
	Counted    int    `json:"counted"`
	NotCounted int    `json:"not_counted"`
	FromMinute string `json:"from_minute"`
}

// pageWriter streams one page: {"ad_id":…,"clicks":[…],"minutes":[…],
// "page":{…},"next_page_token":… | "total":{…}}.
type pageWriter struct {
	bw      *bufio.Writer
	limit   int
	written int
	sum     pageSummary
	minutes []explain.MinuteJSON
	next    *clicksPage
}

func (p *pageWriter) run(ctx context.Context, ex *explain.Explainer, c clicksQuery, first *explain.Minute) error {
	head, _ := json.Marshal(struct {
		AdID     string `json:"ad_id"`
		FilterID string `json:"filter_id,omitempty"`
		From     string `json:"from"`
		To       string `json:"to"`
	}{c.adID, c.filterID, result.FormatMinute(c.from), result.FormatMinute(c.to)})
	p.bw.Write(head[:len(head)-1])
	p.bw.WriteString(`,"clicks":[`)
	p.sum.FromMinute = result.FormatMinute(c.page.minute)
	m, pos := first, c.page.pos
	for {
		if err := p.minute(m, pos); err != nil {
			return err
		}
		if p.next != nil || m.Summary.Minute+60 >= c.to {
			break
		}
		var err error
		if m, err = ex.Minute(ctx, m.Summary.Minute+60); err != nil {
			return err
		}
		pos = 0
	}
	return p.finish(ctx, ex, c)
}

// minute writes the rows of m from pos on, up to the page's limit.
func (p *pageWriter) minute(m *explain.Minute, pos int64) error {
	rows := m.Rows
	for i := pos; i < int64(len(rows)); i++ {
		if p.written == p.limit {
			p.next = &clicksPage{minute: m.Summary.Minute, pos: i}
			return nil
		}
		if p.written > 0 {
			p.bw.WriteByte(',')
		}
		b, err := json.Marshal(rows[i].JSON())
		if err != nil {
			return fmt.Errorf("queryapi: encode click: %w", err)
		}
		if _, err := p.bw.Write(b); err != nil {
			return err
		}
		p.written++
		if rows[i].Status == explain.Counted {
			p.sum.Counted++
		} else {
			p.sum.NotCounted++
		}
	}
	// A minute without raw clicks or stored count that matches says
	// nothing: a day's range would otherwise list 1,440 of them.
	if sm := &m.Summary; sm.Raw > 0 || sm.StoredCount > 0 || sm.Verdict != explain.Match {
		p.minutes = append(p.minutes, sm.JSON())
	}
	return nil
}

// finish writes the summaries; on the last page it recounts the whole range
// for the totals (the page token carries no figures a client could alter).
func (p *pageWriter) finish(ctx context.Context, ex *explain.Explainer, c clicksQuery) error {
	p.sum.Clicks = p.written
	tail := struct {
		Minutes []explain.MinuteJSON `json:"minutes"`
		Page    pageSummary          `json:"page"`
		Next    string               `json:"next_page_token,omitempty"`
		Total   *explain.TotalJSON   `json:"total,omitempty"`
	}{Minutes: p.minutes, Page: p.sum}
	if p.minutes == nil {
		tail.Minutes = []explain.MinuteJSON{}
	}
	if p.next != nil {
		tail.Next = p.next.encode()
	} else {
		tot, err := ex.Totals(ctx)
		if err != nil {
			return err
		}
		j := tot.JSON()
		tail.Total = &j
	}
	b, err := json.Marshal(tail)
	if err != nil {
		return fmt.Errorf("queryapi: encode page: %w", err)
	}
	p.bw.WriteString("],")
	p.bw.Write(b[1:])
	p.bw.WriteByte('\n')
	return p.bw.Flush()
}
