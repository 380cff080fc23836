package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/adclick/adclick/io/storeio"
	"github.com/adclick/adclick/pipelines"
	"github.com/adclick/adclick/runners"
	"github.com/adclick/adclick/services/replayadmin"
)

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
	progressEvery := registerProgressInterval(fs)
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
	cfg, err := sf.config(env, "store")
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
	if *progressEvery < 0 {
		return fmt.Errorf("%w: --progress-interval must not be negative", errUsage)
	}
	now := time.Now()
	if err := replayadmin.CheckSettled(to, allowOpen, now); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	ro := runners.Options{Runner: ao.runner}
	stopProgress := startStoreReadProgress(ctx, env, "replay", *progressEvery, &ro)
	res, err := pipelines.Replay(ctx, pipelines.ReplayOptions{Store: cfg, From: from, To: to, OpenFrom: replayadmin.OpenFrom(allowOpen, now), Config: tcfg,
		Runner: ro, Read: storeio.ReadOptions{Shards: shards}, Logger: env.log})
	stopProgress()
	if err != nil {
		return err
	}
	enc := json.NewEncoder(env.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}
