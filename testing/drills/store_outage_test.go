package drills

import (
	"testing"
	"time"

	"github.com/adclick/adclick/testing/testenv"
)

// TestDrillStoreOutage: the store (a private Cassandra) is stopped under the
// DB writer for 60 s in the middle of the live stream, then started again on
// the same port and data. The DB writer rides it out and catches up:
// nothing is lost.
func TestDrillStoreOutage(t *testing.T) {
	t.Parallel()
	testenv.Kafka(t)
	cas := startServer(t, "cassandra", "ADCLICK_CASSANDRA_HEAP=512M")
	runDrill(t, drill{
		brokers:   testenv.Kafka(t),
		cassandra: cas.addr,
		tail:      90 * time.Second,
		tailRate:  40,
		faults: func(r *drillRun) {
			r.sleep(10 * time.Second)
			t0 := time.Now()
			cas.stop()
			r.t.Logf("%s stopped (%v)", cas, time.Since(t0).Round(100*time.Millisecond))
			r.sleep(60 * time.Second)
			t1 := time.Now()
			cas.start(4 * time.Minute)
			r.t.Logf("%s back after %v (restart took %v)", cas, time.Since(t0).Round(100*time.Millisecond),
				time.Since(t1).Round(100*time.Millisecond))
		},
	})
}
