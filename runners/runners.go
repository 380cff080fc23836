// Package runners is the one place that turns a runner name and its options
// into a running Beam pipeline: prism (in-process, the default for tests and
// the all-in-one), flink (a Beam Flink job server endpoint) and the
// deprecated direct runner (bounded pipelines only; a cross-check for batch
// tests).
package runners

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/metrics"
	fnpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/fnexecution_v1"
	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/options/jobopts"

	// The direct runner is deprecated upstream; it stays as the batch
	// cross-check of prism.
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/direct" //lint:ignore SA1019 deliberate cross-check runner
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/universal"
)

// Runner names.
const (
	Prism  = "prism"
	Flink  = "flink"
	Direct = "direct"
)

// Names lists the runners Run accepts.
var Names = []string{Prism, Flink, Direct}

// Options select and configure a runner.
type Options struct {
	Runner string
	// Endpoint is the job server (host:port) for flink.
	Endpoint string
	// Environment is how a portable runner runs the Go workers: LOOPBACK
	// (in this process: tests), PROCESS or DOCKER (production).
	Environment string
	// EnvironmentConfig is the PROCESS command or DOCKER image.
	EnvironmentConfig string
	// Metrics, when set, follows the job's metrics while it runs (prism and
	// flink; the direct runner has no job service).
	Metrics *JobMetrics
}

// Validate reports a bad runner choice before anything starts.
func (o Options) Validate() error {
	switch o.Runner {
	case Prism, Direct:
		return nil
	case Flink:
		if o.Endpoint == "" {
			return errors.New("runner flink needs --endpoint HOST:PORT of a Beam Flink job server")
		}
		switch strings.ToUpper(o.Environment) {
		case "", "LOOPBACK", "PROCESS", "DOCKER":
			return nil
		}
		return fmt.Errorf("environment %q must be LOOPBACK, PROCESS or DOCKER", o.Environment)
	}
	return fmt.Errorf("unknown runner %q (want one of %s)", o.Runner, strings.Join(Names, ", "))
}

// Beam's portable runners read their settings from process-wide flags; this
// lock keeps two pipelines started at once from mixing them.
var flagsMu sync.Mutex

// Run executes p and waits for it to finish (bounded pipelines) or for ctx to
// end (unbounded ones, on runners that stop on cancellation).
func Run(ctx context.Context, p *beam.Pipeline, o Options) (beam.PipelineResult, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	switch o.Runner {
	case Direct:
		return direct.Execute(ctx, p)
	case Flink:
		name := newJobName() // for Metrics to find the job
		flagsMu.Lock()
		prev := [...]string{*jobopts.Endpoint, *jobopts.EnvironmentType, *jobopts.EnvironmentConfig}
		*jobopts.Endpoint = o.Endpoint
		*jobopts.EnvironmentType = strings.ToLower(defaultString(o.Environment, "LOOPBACK"))
		*jobopts.EnvironmentConfig = o.EnvironmentConfig
		*jobopts.JobName = name
		flagsMu.Unlock()
		// The flags are the process's: left set, a later prism Run in this
		// process would submit to the Flink job server.
		defer func() {
			flagsMu.Lock()
			*jobopts.Endpoint, *jobopts.EnvironmentType, *jobopts.EnvironmentConfig = prev[0], prev[1], prev[2]
			flagsMu.Unlock()
		}()
		defer o.Metrics.follow(ctx, o.Endpoint, name)()
		return universal.Execute(ctx, p)
	default:
		// The job gets a name of its own so that it can be cancelled when
		// ctx ends (cancelJob says why). The name travels in a process-wide
		// flag: two Runs starting at the same instant could both read the
		// later name, and then the first to end would cancel both.
		name := newJobName()
		flagsMu.Lock()
		if !slices.Contains(jobopts.GetExperiments(), prismNoSplit) {
			*jobopts.Experiments = strings.Trim(*jobopts.Experiments+","+prismNoSplit, ",")
		}
		*jobopts.JobName = name
		if *jobopts.Endpoint == "" {
			// What prism.Execute would do, but on loopback only.
			ep, err := startPrismJobServer()
			if err != nil {
				flagsMu.Unlock()
				return nil, err
			}
			*jobopts.Endpoint = ep
			if *jobopts.EnvironmentType == "" {
				*jobopts.EnvironmentType = "loopback"
			}
		}
		ep := *jobopts.Endpoint
		flagsMu.Unlock()
		stop := o.Metrics.follow(ctx, ep, name)
		res, err := prism.Execute(ctx, p)
		if ctx.Err() != nil && ep != "" {
			cancelJob(ep, name)
		}
		stop()
		return res, err
	}
}

// Prism's in-process job server (jobservices.NewServer, called by
// prism.Execute when no endpoint is set) listens on ":port": every interface,
// an unauthenticated gRPC port that can submit jobs and reach the Fn API.
// Beam 2.73.0 offers no way to give it an address, and the package is
// internal, so startPrismJobServer reaches it by linkname and moves it to a
// 127.0.0.1 listener on the same port before it serves. NewServer still binds
// the wildcard address for the instant until it is closed — no connection
// is ever accepted on it. TestPrismListensOnLoopbackOnly fails if a Beam
// upgrade changes any of this; on an upgrade, look for a bind-address option
// first.

//go:linkname prismNewServer github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism/internal/jobservices.NewServer
func prismNewServer(port int, execute func(job unsafe.Pointer)) unsafe.Pointer

//go:linkname prismRunPipeline github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism/internal.RunPipeline
func prismRunPipeline(job unsafe.Pointer)

//go:linkname prismServe github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism/internal/jobservices.(*Server).Serve
func prismServe(s unsafe.Pointer)

//go:linkname prismEndpoint github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism/internal/jobservices.(*Server).Endpoint
func prismEndpoint(s unsafe.Pointer) string

// prismServerHead mirrors the leading fields of jobservices.Server in Beam
// 2.73.0: four embedded gRPC stubs, then the listener. Its offset comes from
// the same types, so it follows if the stubs ever gain a size.
type prismServerHead struct {
	jobpb.UnimplementedJobServiceServer
	jobpb.UnimplementedArtifactStagingServiceServer
	jobpb.UnimplementedArtifactRetrievalServiceServer
	fnpb.UnimplementedProvisionServiceServer
	lis net.Listener
}

// startPrismJobServer starts prism's job server on 127.0.0.1 and returns its
// endpoint. The server lives as long as the process, as prism's own does.
func startPrismJobServer() (string, error) {
	var err error
	for range 5 { // another process may take the port while it is free
		var ep string
		if ep, err = movePrismJobServer(); err == nil {
			return ep, nil
		}
	}
	return "", err
}

func movePrismJobServer() (string, error) {
	s := prismNewServer(0, prismRunPipeline)
	lis := (*net.Listener)(unsafe.Add(s, unsafe.Offsetof(prismServerHead{}.lis)))
	wild, ok := (*lis).Addr().(*net.TCPAddr)
	if !ok || strconv.Itoa(wild.Port) != portOf(prismEndpoint(s)) {
		return "", fmt.Errorf("runners: prism's job server is not laid out as in Beam 2.73.0 (listener %v, endpoint %s)", (*lis).Addr(), prismEndpoint(s))
	}
	// The same port: prism has already told its worker multiplexer
	// "localhost:<port>".
	if err := (*lis).Close(); err != nil {
		return "", fmt.Errorf("runners: close prism's wildcard listener: %w", err)
	}
	lo, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(wild.Port)))
	if err != nil {
		return "", fmt.Errorf("runners: prism job server on 127.0.0.1: %w", err)
	}
	*lis = lo
	go prismServe(s)
	return lo.Addr().String(), nil
}

func portOf(hostport string) string {
	_, p, _ := net.SplitHostPort(hostport)
	return p
}

// prismNoSplit turns off prism's splitting of slow bundles. Our sources
// checkpoint themselves, so nothing needs it, and prism mishandles a split of
// a bundle that carries timers (apache/beam#35771) — the streaming job's
// accumulators have timers, and two of four long bounded runs were aborted
// with "nothing in progress and no refreshes with non zero pending elements".
const prismNoSplit = "prism_disable_sdf_split"

func defaultString(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// Counters returns the committed (or, failing that, attempted) value of
// every user counter in namespace, by name, summed over transforms.
func Counters(r beam.PipelineResult, namespace string) map[string]int64 {
	out := map[string]int64{}
	if r == nil {
		return out
	}
	q := r.Metrics().Query(func(sr metrics.SingleResult) bool { return sr.Namespace() == namespace })
	for _, c := range q.Counters() {
		out[c.Name()] += c.Result()
	}
	return out
}

// Init prepares the process to run pipelines: Beam's own initialisation,
// which must run before any pipeline is built. In a worker process started by
// a runner it runs the worker harness and exits. Packages that run pipelines
// without importing Beam (services, tests) call this instead.
func Init() { beam.Init() }
