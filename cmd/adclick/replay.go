package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/io/storeio"
	"github.com/adclick/adclick/pipelines"
	"github.com/adclick/adclick/queryapi"
	"github.com/adclick/adclick/runners"
	"github.com/adclick/adclick/transforms"
)

// storeOptions name a store on the command line (replay, reconcile,
// aggregate --from-store).
type storeOptions struct {
	backend, pebbleDir, hosts, keyspace, readCons, writeCons string
}

func (f *storeOptions) register(fs *flag.FlagSet, backendFlag string) {
	fs.StringVar(&f.backend, backendFlag, "pebble", "store: pebble (embedded) or cassandra")
	// No backquotes in usage strings: the flag package prints a backquoted
	// word as the flag's value name ("-pebble-dir adclick serve").
	fs.StringVar(&f.pebbleDir, "pebble-dir", "data/pebble", "Pebble database directory (pebble); one process may open it at a time")
	fs.StringVar(&f.hosts, "cassandra-hosts", "", "Cassandra contact points, host[:port] comma-separated (cassandra)")
	fs.StringVar(&f.keyspace, "keyspace", "adclick", "Cassandra keyspace (cassandra)")
	fs.StringVar(&f.readCons, "read-consistency", "", "Cassandra read consistency (default LOCAL_QUORUM)")
	fs.StringVar(&f.writeCons, "write-consistency", "", "Cassandra write consistency (default LOCAL_QUORUM)")
}

func (f *storeOptions) config(backendFlag string) (storeio.Config, error) {
	cfg := storeio.Config{Backend: f.backend, Path: f.pebbleDir, Keyspace: f.keyspace,
		ReadConsistency: f.readCons, WriteConsistency: f.writeCons}
	for _, h := range strings.Split(f.hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			cfg.Hosts = append(cfg.Hosts, h)
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("%w: --%s: %v", errUsage, backendFlag, err)
	}
	return cfg, nil
}

// rangeFlags are --from and --to.
type rangeFlags struct{ from, to string }

func (r *rangeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&r.from, "from", "", "start of the range, inclusive: RFC 3339, YYYY-MM-DDTHH:MM (UTC) or epoch seconds; a whole minute (required)")
	fs.StringVar(&r.to, "to", "", "end of the range, exclusive; same forms (required)")
}

func (r *rangeFlags) parse() (time.Time, time.Time, error) {
	if r.from == "" || r.to == "" {
		return time.Time{}, time.Time{}, fmt.Errorf("%w: --from and --to are required", errUsage)
	}
	from, err := pipelines.ParseMinute(r.from)
	if err != nil {
		return from, from, fmt.Errorf("%w: --from: %v", errUsage, err)
	}
	to, err := pipelines.ParseMinute(r.to)
	if err != nil {
		return from, to, fmt.Errorf("%w: --to: %v", errUsage, err)
	}
	if !from.Before(to) {
		return from, to, fmt.Errorf("%w: --from %s must be before --to %s (the range is [from, to))", errUsage, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	return from, to, nil
}

// settle is how long after a minute closes it may still change in real time:
// the default allowed lateness plus the runner's margin. Replaying a minute
// younger than that would hide later streaming updates of it.
const settle = 5*time.Minute + time.Minute

// openFrom is the first minute still open to late clicks at now, or zero
// with --allow-open-minutes (pipelines.ReplayOptions.OpenFrom). A replay
// refuses a range that ends after it (checkSettled) and leaves the top lists
// of window ends from it on to the streaming job.
func openFrom(allowOpen bool, now time.Time) time.Time {
	if allowOpen {
		return time.Time{}
	}
	return now.Add(-settle).Truncate(time.Minute).UTC()
}

func checkSettled(to time.Time, allowOpen bool, now time.Time) error {
	if allowOpen {
		return nil
	}
	if limit := openFrom(false, now); to.After(limit) {
		return fmt.Errorf("--to %s is later than %s: those minutes may still receive late clicks, and once a replay serves them the streaming job's later updates are hidden; wait, or pass --allow-open-minutes",
			to.Format(time.RFC3339), limit.Format(time.RFC3339))
	}
	return nil
}

// runReplay recalculates a range from the raw store into a new generation.
func runReplay(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlagSet(env, "replay")
	var (
		sf        storeOptions
		rf        rangeFlags
		ao        aggOptions
		allowOpen bool
		shards    int
	)
	sf.register(fs, "store")
	rf.register(fs)
	ao.register(fs)
	fs.BoolVar(&allowOpen, "allow-open-minutes", false, "replay minutes younger than the allowed lateness (6 min) too, and rewrite the top lists of window ends that young; without it those lists are left to the streaming job")
	fs.IntVar(&shards, "read-shards", 16, "parallel shards of the raw read")
	fs.Lookup("pebble-dir").Usage += "; while the serve command holds it, replay through serve's POST /admin/replay"
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: adclick replay --from T --to T [flags]

Recalculates the minutes [from, to) from the raw store with the same
aggregation as the streaming job (in batch) and rewrites every result that
depends on them: the counts and filtered counts of [from, to) and the top
lists, every window size, of every window end in [from, to + W - 1 min),
W the longest window (--window-sizes) — the lists ending after to sum
replayed minutes too. It reads the raw clicks of [from - (W - 1 min),
to + W - 1 min), writes into a new generation and switches reads of both
ranges to it atomically once everything is written. Top lists of window ends
still open (younger than 6 min) are not rewritten unless
--allow-open-minutes (tops_to in the result says where they stop). Running
it twice changes nothing. Prints the result as JSON.

`)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, env, args); err != nil {
		return err
	}
	cfg, err := sf.config("store")
	if err != nil {
		return err
	}
	from, to, err := rf.parse()
	if err != nil {
		return err
	}
	tcfg, err := ao.config()
	if err != nil {
		return err
	}
	if shards < 1 || shards > 4096 {
		return fmt.Errorf("%w: --read-shards %d must be between 1 and 4096", errUsage, shards)
	}
	now := time.Now()
	if err := checkSettled(to, allowOpen, now); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	res, err := pipelines.Replay(ctx, pipelines.ReplayOptions{Store: cfg, From: from, To: to, OpenFrom: openFrom(allowOpen, now), Config: tcfg,
		Runner: runners.Options{Runner: ao.runner}, Read: storeio.ReadOptions{Shards: shards}, Logger: env.log})
	if err != nil {
		return err
	}
	enc := json.NewEncoder(env.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// replayAdmin is the query API's admin hook (queryapi.Admin): POST
// /admin/replay starts a replay in the serving process — the only way to
// replay an embedded Pebble store the server holds open.
type replayAdmin struct {
	ctx   context.Context // the server's: jobs stop when it ends
	store storeio.Config
	cfg   transforms.Config
	log   *slog.Logger
	now   func() time.Time

	mu      sync.Mutex
	jobs    map[string]*queryapi.ReplayJob
	order   []string // job ids, oldest first
	running int
}

// maxReplayJobs bounds the jobs remembered; maxRunningReplays the jobs
// running at once (each is a whole pipeline on a shared machine).
const (
	maxReplayJobs     = 100
	maxRunningReplays = 1
)

func newReplayAdmin(ctx context.Context, st storeio.Config, cfg transforms.Config, log *slog.Logger) *replayAdmin {
	return &replayAdmin{ctx: ctx, store: st, cfg: cfg, log: log, now: time.Now, jobs: map[string]*queryapi.ReplayJob{}}
}

// StartReplay implements queryapi.Admin.
func (a *replayAdmin) StartReplay(_ context.Context, from, to int64) (queryapi.ReplayJob, error) {
	f, t := time.Unix(from, 0).UTC(), time.Unix(to, 0).UTC()
	if err := pipelines.CheckRange(f, t); err != nil {
		return queryapi.ReplayJob{}, err
	}
	// The API has no --allow-open-minutes: open minutes are refused, and
	// top lists of open window ends after to are left to the streaming job.
	now := a.now()
	open := openFrom(false, now)
	if err := checkSettled(t, false, now); err != nil {
		return queryapi.ReplayJob{}, fmt.Errorf("%w: %v", store.ErrInvalid, err)
	}
	var idb [8]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return queryapi.ReplayJob{}, fmt.Errorf("%w: job id: %v", store.ErrUnavailable, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.running >= maxRunningReplays {
		return queryapi.ReplayJob{}, fmt.Errorf("%w: a replay is already running", queryapi.ErrConflict)
	}
	job := &queryapi.ReplayJob{ID: hex.EncodeToString(idb[:]), From: f, To: t, State: "running", Started: a.now().UTC()}
	a.jobs[job.ID] = job
	a.order = append(a.order, job.ID)
	for len(a.order) > maxReplayJobs {
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

func (a *replayAdmin) run(id string, from, to, open time.Time) {
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
func (a *replayAdmin) ReplayStatus(_ context.Context, id string) (queryapi.ReplayJob, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	job, ok := a.jobs[id]
	if !ok {
		return queryapi.ReplayJob{}, fmt.Errorf("%w: replay job %q", store.ErrNotFound, id)
	}
	return *job, nil
}

// wait blocks until no replay runs (tests, shutdown).
func (a *replayAdmin) wait(ctx context.Context) error {
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

// replayConfig is the aggregation configuration of serve's replays: the
// server's window sizes and N.
func replayConfig(sizes []int, topN int) transforms.Config {
	c := transforms.DefaultConfig()
	c.WindowSizes, c.TopN = sizes, topN
	return c
}
