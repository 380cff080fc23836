package queryapi

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"net/http"
	"strconv"
)

//go:embed openapi.json
var openAPIDoc []byte

//go:embed web/index.html
var dashboardHTML []byte

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(openAPIDoc)))
	_, _ = w.Write(openAPIDoc)
}

func (s *Server) dashboard(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", s.dashCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	_, _ = w.Write(dashboardHTML)
}

// dashboardCSP allows exactly the page's own inline script and style (by
// hash) and requests to this origin: no external asset can load, and an
// injected script would not run.
func dashboardCSP() string {
	csp := "default-src 'none'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	if h := inlineHash(dashboardHTML, "<script>", "</script>"); h != "" {
		csp += "; script-src '" + h + "'"
	}
	if h := inlineHash(dashboardHTML, "<style>", "</style>"); h != "" {
		csp += "; style-src '" + h + "'"
	}
	return csp
}

func inlineHash(page []byte, open, close string) string {
	i := bytes.Index(page, []byte(open))
	if i < 0 {
		return ""
	}
	body := page[i+len(open):]
	j := bytes.Index(body, []byte(close))
	if j < 0 {
		return ""
	}
	sum := sha256.Sum256(body[:j])
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}
