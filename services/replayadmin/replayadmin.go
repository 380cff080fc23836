// Package replayadmin runs replays inside a serving process: it is the query
// API's admin hook (queryapi.Admin) behind POST /admin/replay, the only way
// to replay an embedded Pebble store that the server holds open. It also
// holds the rule every replay entry point shares: which minutes are still
// open to late clicks and so may not be replayed yet. It refuses replays that
// would read raw clicks raw retention has deleted.
package replayadmin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/io/store/backend"
	"github.com/adclick/adclick/pipelines"
	"github.com/adclick/adclick/queryapi"
	"github.com/adclick/adclick/transforms"
)

// Settle is how long after a minute closes it may still change in real time:
// the default allowed lateness plus the runner's margin. Replaying a minute
// younger than that would hide later streaming updates of it.
const Settle = 5*time.Minute + time.Minute

// OpenFrom is the first minute still open to late clicks at now, or zero when
// open minutes are allowed (pipelines.ReplayOptions.OpenFrom). A replay
// refuses a range that ends after it (CheckSettled) and leaves the top lists
// of window ends from it on to the streaming job.
func OpenFrom(allowOpen bool, now time.Time) time.Time {
	if allowOpen {
		return time.Time{}
	}
	return now.Add(-Settle).Truncate(time.Minute).UTC()
}

// CheckSettled refuses a range that ends after OpenFrom, unless open minutes
// are allowed.
func CheckSettled(to time.Time, allowOpen bool, now time.Time) error {
	if allowOpen {
		return nil
	}
	if limit := OpenFrom(false, now); to.After(limit) {
		return fmt.Errorf("--to %s is later than %s: those minutes may still receive late clicks, and once a replay serves them the streaming job's later updates are hidden; wait, or pass --allow-open-minutes",
			to.Format(time.RFC3339), limit.Format(time.RFC3339))
	}
	return nil
}

// Config is the aggregation configuration of a server's replays: the
// server's window sizes and N, the defaults otherwise.
func Config(sizes []int, topN int) transforms.Config {
	c := transforms.DefaultConfig()
	c.WindowSizes, c.TopN = sizes, topN
	return c
}

// Limits: MaxJobs bounds the jobs remembered; MaxRunning the jobs running at
// once (each is a whole pipeline on a shared machine).
const (
	MaxJobs    = 100
	MaxRunning = 1
)

// Admin implements queryapi.Admin.
type Admin struct {
	ctx   context.Context // the server's: jobs stop when it ends
	store backend.Config
	cfg   transforms.Config
	log   *slog.Logger
	now   func() time.Time

	mu      sync.Mutex
	jobs    map[string]*queryapi.ReplayJob
	order   []string // job ids, oldest first
	running int
}

// New returns an Admin whose jobs replay into st with cfg and stop when ctx
// ends.
func New(ctx context.Context, st backend.Config, cfg transforms.Config, log *slog.Logger) *Admin {
	return &Admin{ctx: ctx, store: st, cfg: cfg, log: log, now: time.Now, jobs: map[string]*queryapi.ReplayJob{}}
}

// StartReplay implements queryapi.Admin.
func (a *Admin) StartReplay(ctx context.Context, from, to int64) (queryapi.ReplayJob, error) {
	f, t := time.Unix(from, 0).UTC(), time.Unix(to, 0).UTC()
	if err := pipelines.CheckRange(f, t); err != nil {
		return queryapi.ReplayJob{}, err
	}
	// The API has no --allow-open-minutes: open minutes are refused, and
	// top lists of open window ends after to are left to the streaming job.
	now := a.now()
	open := OpenFrom(false, now)
	if err := CheckSettled(t, false, now); err != nil {
		return queryapi.ReplayJob{}, fmt.Errorf("%w: %v", store.ErrInvalid, err)
	}
	if err := a.checkRetained(ctx, f, t); err != nil {
		return queryapi.ReplayJob{}, err
	}
	var idb [8]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return queryapi.ReplayJob{}, fmt.Errorf("%w: job id: %v", store.ErrUnavailable, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.running >= MaxRunning {
		return queryapi.ReplayJob{}, fmt.Errorf("%w: a replay is already running", queryapi.ErrConflict)
	}
	job := &queryapi.ReplayJob{ID: hex.EncodeToString(idb[:]), From: f, To: t, State: "running", Started: a.now().UTC()}
	a.jobs[job.ID] = job
	a.order = append(a.order, job.ID)
	for len(a.order) > MaxJobs {
		if old := a.jobs[a.order[0]]; old != nil && old.State == "running" {
			break
		}
		delete(a.jobs, a.order[0])
		a.order = a.order[1:]
	}
	a.running++
	snapshot := *job
	go a.run(job.ID, f, t, open)
	return snapshot, nil
}

// checkRetained refuses, before a job starts (400 rather than a failed
// job), a replay that would read raw clicks raw retention has deleted. The
// replay checks again itself.
func (a *Admin) checkRetained(ctx context.Context, from, to time.Time) error {
	st, err := backend.Open(ctx, a.store, nil) // an embedded store is shared: no second open
	if err != nil {
		return fmt.Errorf("open the store: %w", err)
	}
	defer st.Close()
	maxW := slices.Max(a.cfg.WindowSizes)
	return store.CheckRawRetained(ctx, st, pipelines.ReplayWhat(from, to, maxW), from.Add(-time.Duration(maxW-1)*time.Minute))
}

func (a *Admin) run(id string, from, to, open time.Time) {
	log := a.log.With("job", id)
	_, err := pipelines.Replay(a.ctx, pipelines.ReplayOptions{Store: a.store, From: from, To: to, OpenFrom: open, Config: a.cfg, Logger: log})
	a.mu.Lock()
	defer a.mu.Unlock()
	a.running--
	job := a.jobs[id]
	if job == nil {
		return
	}
	job.Finished = a.now().UTC()
	job.State = "done"
	if err != nil {
		job.State = "failed"
		log.Error("replay failed", "err", err)
	}
}

// ReplayStatus implements queryapi.Admin.
func (a *Admin) ReplayStatus(_ context.Context, id string) (queryapi.ReplayJob, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	job, ok := a.jobs[id]
	if !ok {
		return queryapi.ReplayJob{}, fmt.Errorf("%w: replay job %q", store.ErrNotFound, id)
	}
	return *job, nil
}

// Wait blocks until no replay runs, or ctx ends (shutdown, tests).
func (a *Admin) Wait(ctx context.Context) error {
	for {
		a.mu.Lock()
		n := a.running
		a.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
