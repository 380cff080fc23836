package queryapi

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Error codes of the JSON error body {"error": code, "detail": text}. The
// detail never carries internals (addresses, driver messages, stacks): those
// go to the log under the request ID.
const (
	codeInvalid          = "invalid_parameter"
	codeBadRequest       = "bad_request"       // not parsable as HTTP, or ambiguous headers
	codeHeadersTooLarge  = "headers_too_large" // 431
	codeUnauthorized     = "unauthorized"
	codeForbidden        = "forbidden"
	codeRateLimited      = "rate_limited"
	codeNotFound         = "not_found"
	codeMethodNotAllowed = "method_not_allowed"
	codeConflict         = "conflict"
	codeUnavailable      = "unavailable"
	codeNotImplemented   = "not_implemented"
	codeInternal         = "internal"
)

type errorBody struct {
	Error  string `json:"error"`
	Detail string `json:"detail"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own response types get here; they always marshal.
		status = http.StatusInternalServerError
		b = []byte(`{"error":"internal","detail":"the response could not be encoded"}`)
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, status int, code, detail string) {
	writeJSON(w, status, errorBody{Error: code, Detail: detail})
}
