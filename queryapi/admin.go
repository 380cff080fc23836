package queryapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/adclick/adclick/io/store"
)

// Admin is the hook for everything that changes data. The replay
// (recalculation) component implements it; a server built without one
// answers every admin route 501.
//
// Errors: wrap store.ErrInvalid for a request the client must change (400),
// store.ErrNotFound for an unknown job (404), ErrConflict when the request
// clashes with work in progress, e.g. a replay already running (409),
// store.ErrUnavailable when the backend is down (503). Error texts are
// logged, never sent to the client.
type Admin interface {
	// StartReplay recalculates the minutes [from, to) (Unix seconds, whole
	// minutes, from < to) from the raw store and returns the new job.
	StartReplay(ctx context.Context, from, to int64) (ReplayJob, error)
	// ReplayStatus reports a job started by StartReplay.
	ReplayStatus(ctx context.Context, id string) (ReplayJob, error)
}

// ErrConflict marks an admin request refused because of work in progress
// (answered 409).
var ErrConflict = errors.New("queryapi: conflict with work in progress")

// ReplayJob is a recalculation job as the admin API shows it.
type ReplayJob struct {
	ID       string    `json:"id"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	State    string    `json:"state"` // e.g. "running", "done", "failed"
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
}

func (s *Server) startReplay(w http.ResponseWriter, r *http.Request, q map[string]string) {
	if s.cfg.Admin == nil {
		notInBuild(w)
		return
	}
	from, err := parseMinute("from", q["from"])
	if err != nil {
		s.fail(w, r, err)
		return
	}
	to, err := parseMinute("to", q["to"])
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if from >= to {
		s.fail(w, r, badParam("from must be before to (the range is [from, to))"))
		return
	}
	job, err := s.cfg.Admin.StartReplay(r.Context(), from, to)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, job)
}

func (s *Server) replayStatus(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	if s.cfg.Admin == nil {
		notInBuild(w)
		return
	}
	id := chi.URLParam(r, "id")
	if err := checkID("id", id); err != nil {
		s.fail(w, r, err)
		return
	}
	job, err := s.cfg.Admin.ReplayStatus(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, codeNotFound, "no replay job with this id")
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, job)
}

func notInBuild(w http.ResponseWriter) {
	writeError(w, http.StatusNotImplemented, codeNotImplemented, "admin operations are not available in this build")
}
