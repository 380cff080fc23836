// Command adclick is the one binary of the adclick system. Each subcommand is
// one component of the design (see README.md); the logic lives in packages and
// this command only wires flags, logging and signals to them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/adclick/adclick/runners"
)

// command is one subcommand. run gets the arguments after the subcommand name.
type command struct {
	summary string
	run     func(ctx context.Context, env *cliEnv, args []string) error
}

// cliEnv is what a subcommand may use of the process: no globals.
type cliEnv struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	log    *slog.Logger
	getenv func(string) string
}

// commands lists the subcommands; each lives in its own file.
func commands() map[string]command {
	return map[string]command{
		"migrate":    {"apply the Cassandra schema (idempotent)", runMigrate},
		"aggregate":  {"recount a JSON-lines click log (or a stored range) and print result records", runAggregate},
		"allinone":   {"run everything in one process (embedded Kafka, generator, log watcher, streaming job, DB writers, Pebble, API and dashboard)", runAllInOne},
		"stream":     {"run the streaming aggregation job: raw topic → aggregates → results topic", runStream},
		"dbwriter":   {"consume the results (or raw) topic into the store", runDBWriter},
		"generate":   {"generate realistic click traffic (JSON lines) with duplicates, late, too-late and malformed lines", runGenerate},
		"logwatcher": {"tail click log files into the raw Kafka topic, keyed by ad_id; positions persisted after broker acks", runLogwatcher},
		"serve":      {"serve the query API, metrics and dashboard over the aggregation store", runServe},
		"replay":     {"recalculate a time range from the raw store into a new generation, switched in atomically", runReplay},
		"topics":     {"create or verify the Kafka topics (raw, results, dead letters) with the partitions and settings adclick needs", runTopics},
		"explain":    {"list the clicks behind an ad's count over a range, counted or not and why, with the recount and digest beside the stored ones (exit 3 on a mismatch); jsonl/csv export", runExplain},
		"reconcile":  {"recount a time range from raw data, compare with the stored results, report (exit 3 above the threshold), --repair", runReconcile},
	}
}

// errUsage marks a usage error: exit code 2, no stack of wrapping.
var errUsage = errors.New("usage error")

func main() {
	if beamWorker(os.Args[1:]) {
		// Started by a portable runner (PROCESS environment) as a Beam
		// worker: Beam's own flags, then runners.Init runs the harness and exits.
		flag.Parse()
		runners.Init()
		return
	}
	runners.Init()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], &cliEnv{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv})
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, env *cliEnv) int {
	level := slog.LevelInfo
	if env.getenv("ADCLICK_LOG_LEVEL") == "debug" {
		level = slog.LevelDebug
	}
	env.log = slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: level}))
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.stderr, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(env.stderr, "adclick: unknown command %q\n\n", args[0])
		usage(env.stderr, cmds)
		return 2
	}
	if err := c.run(ctx, env, args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(env.stderr, "adclick %s: %v\n", args[0], err)
		if errors.Is(err, errUsage) {
			return 2
		}
		if errors.Is(err, errThreshold) || errors.Is(err, errMismatch) {
			return exitThreshold
		}
		return 1
	}
	return 0
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "adclick — ad click event aggregation\n\nUsage: adclick <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-11s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nEvery flag --some-name can also be set as ADCLICK_SOME_NAME; a flag on the command line wins.\nRun 'adclick <command> -h' for its flags.")
}

// beamWorker reports whether the process was started as a Beam SDK worker.
func beamWorker(args []string) bool {
	for _, a := range args {
		if a == "--worker" || a == "-worker" || strings.HasPrefix(a, "--worker=") || strings.HasPrefix(a, "-worker=") {
			return true
		}
	}
	return false
}
