package runners

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/options/jobopts"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
)

var portableElements = beam.NewCounter("adclick.runners.test", "elements")

func countElement(ctx context.Context, _ int) { portableElements.Inc(ctx, 1) }

func init() { register.Function2x0(countElement) }

// TestPrismJobService: the standalone job service listens on 127.0.0.1 only,
// takes a job submitted as --runner flink submits it (here LOOPBACK; the
// PROCESS path is testing/portable's), reports its metrics, and CancelJobs
// finds nothing left to cancel once the job is done.
func TestPrismJobService(t *testing.T) {
	ep0, env0, cfg0 := *jobopts.Endpoint, *jobopts.EnvironmentType, *jobopts.EnvironmentConfig

	ep, err := StartPrismJobService()
	if err != nil {
		t.Fatal(err)
	}
	host, _, err := net.SplitHostPort(ep)
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("endpoint %q: want 127.0.0.1:port (%v)", ep, err)
	}
	socks, err := listening()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range socks {
		if h, _, _ := net.SplitHostPort(s); !net.ParseIP(h).IsLoopback() {
			t.Errorf("listening on %s: only loopback addresses are allowed", s)
		}
	}

	p, s := beam.NewPipelineWithRoot()
	beam.ParDo0(s, countElement, beam.Create(s, 1, 2, 3))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := Run(ctx, p, Options{Runner: Flink, Endpoint: ep})
	if err != nil {
		t.Fatal(err)
	}
	if got := Counters(res, "adclick.runners.test")["elements"]; got != 3 {
		t.Errorf("elements counted = %d, want 3", got)
	}
	if err := CancelJobs(ctx, ep); err != nil {
		t.Errorf("CancelJobs with every job done: %v", err)
	}
	// Beam's flags are process-wide: left set, a later prism Run would take
	// the flink endpoint for its own job server.
	if *jobopts.Endpoint != ep0 || *jobopts.EnvironmentType != env0 || *jobopts.EnvironmentConfig != cfg0 {
		t.Errorf("after the flink Run the flags are %q %q %q, want them as before: %q %q %q",
			*jobopts.Endpoint, *jobopts.EnvironmentType, *jobopts.EnvironmentConfig, ep0, env0, cfg0)
	}
}
