package drills

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/adclick/adclick/testing/e2e"
	"github.com/adclick/adclick/testing/testenv"
)

// TestDrillSIGKILL: the log watcher, the streaming job and the DB writer are
// each SIGKILLed 5 times at random moments of a live stream and restarted
// after one to two seconds. The store ends equal to the recount.
func TestDrillSIGKILL(t *testing.T) {
	t.Parallel()
	runDrill(t, drill{
		brokers:  testenv.Kafka(t),
		tail:     75 * time.Second,
		tailRate: 40,
		faults: func(r *drillRun) {
			type kill struct {
				at time.Duration
				p  *e2e.Proc
			}
			// 5 moments per process in [2 s, 72 s), at least 8 s apart, so
			// that each incarnation gets going before it is killed again:
			// uniform over such schedules (5 points in the span left after
			// the gaps, sorted, each shifted by the gaps before it).
			const n, gap, from, span = 5, 8 * time.Second, 2 * time.Second, 70 * time.Second
			var sched []kill
			for _, p := range r.procs {
				var ats []time.Duration
				for range n {
					ats = append(ats, time.Duration(r.rng.Int64N(int64(span-(n-1)*gap))))
				}
				slices.Sort(ats)
				for i, at := range ats {
					sched = append(sched, kill{from + at + time.Duration(i)*gap, p})
				}
			}
			slices.SortFunc(sched, func(a, b kill) int { return int(a.at - b.at) })
			var desc []string
			for _, k := range sched {
				desc = append(desc, fmt.Sprintf("%s@%v", k.p.Name, k.at.Round(10*time.Millisecond)))
			}
			r.t.Logf("kill schedule from the tail's start: %s", strings.Join(desc, " "))
			kills := map[string]int{}
			for _, k := range sched {
				r.sleep(k.at - time.Since(r.tailStart))
				k.p.Kill()
				kills[k.p.Name]++
				pause := time.Second + time.Duration(r.rng.IntN(1000))*time.Millisecond
				r.t.Logf("SIGKILL %s #%d at %v, restart after %v", k.p.Name, kills[k.p.Name],
					time.Since(r.tailStart).Round(10*time.Millisecond), pause)
				r.sleep(pause, k.p)
				k.p.Start()
			}
			for _, p := range r.procs {
				if kills[p.Name] != n {
					r.t.Fatalf("%s killed %d times, want %d", p.Name, kills[p.Name], n)
				}
			}
		},
	})
}

// TestDrillKafkaRestart: the Kafka broker (a private one) is stopped for
// 30 s in the middle of the live stream, then started again on the same
// port and data. Every process rides it out; the store ends equal to the
// recount.
func TestDrillKafkaRestart(t *testing.T) {
	t.Parallel()
	kafka := startServer(t, "kafka")
	runDrill(t, drill{
		brokers:  []string{kafka.addr},
		tail:     60 * time.Second,
		tailRate: 40,
		faults: func(r *drillRun) {
			r.sleep(10 * time.Second)
			t0 := time.Now()
			kafka.stop()
			r.t.Logf("%s stopped (%v)", kafka, time.Since(t0).Round(100*time.Millisecond))
			r.sleep(30 * time.Second)
			t1 := time.Now()
			kafka.start(3 * time.Minute)
			r.t.Logf("%s back after %v (restart took %v)", kafka, time.Since(t0).Round(100*time.Millisecond),
				time.Since(t1).Round(100*time.Millisecond))
		},
	})
}
