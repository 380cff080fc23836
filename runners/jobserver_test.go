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
	// Run's flink case leaves its endpoint in Beam's process-wide flags,
	// where the prism case would take it for its own job server.
	ep0, env0, cfg0 := *jobopts.Endpoint, *jobopts.EnvironmentType, *jobopts.EnvironmentConfig
	t.Cleanup(func() { *jobopts.Endpoint, *jobopts.EnvironmentType, *jobopts.EnvironmentConfig = ep0, env0, cfg0 })

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
}
