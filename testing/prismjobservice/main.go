// Command prismjobservice runs prism as a standalone Beam job service on
// 127.0.0.1, for tests that submit through the portable path (--runner
// flink) to a job service in another process. It prints its endpoint
// (host:port) as the first line of stdout, then serves until SIGINT or
// SIGTERM; it then cancels the jobs still running, so that the workers it
// started stop with them.
//
// Beam's Flink job server cannot be fetched on the project's machines; prism
// speaks the same job, artifact and Fn APIs, and runs PROCESS environments
// (it starts the environment's boot command per worker).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/adclick/adclick/runners"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log); err != nil {
		log.Error("prismjobservice", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger) error {
	ep, err := runners.StartPrismJobService()
	if err != nil {
		return err
	}
	if _, err := fmt.Println(ep); err != nil {
		return fmt.Errorf("print endpoint: %w", err)
	}
	log.Info("prism job service ready", "endpoint", ep, "pid", os.Getpid())
	<-ctx.Done()
	log.Info("stopping: cancelling running jobs")
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return runners.CancelJobs(cctx, ep)
}
