package streambench

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"syscall"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adclick/adclick/io/kafkaio"
	"github.com/adclick/adclick/io/store/pebblestore"
	"github.com/adclick/adclick/pipelines"
	"github.com/adclick/adclick/runners"
	"github.com/adclick/adclick/services/dbwriter"
	"github.com/adclick/adclick/transforms"
)

// streamRun is what runs of the streaming job measured, summed.
type streamRun struct {
	job, store time.Duration // job start → job end; → the DB writer committed it all
	cpu        time.Duration // this process's CPU from job start to stored
	records    int64         // in the results topic
	bytes      int64         // the results topic's size on the broker
}

func (r *streamRun) add(o streamRun) {
	r.job += o.job
	r.store += o.store
	r.cpu += o.cpu
	r.records += o.records
	r.bytes += o.bytes
}

func (r streamRun) summary(lines int) string {
	return fmt.Sprintf("%.0f events/s (job %v, stored %v), cpu %.1f s, %d results of %.1f B; load %s",
		float64(lines)/r.job.Seconds(), r.job.Round(time.Millisecond), r.store.Round(time.Millisecond),
		r.cpu.Seconds(), r.records, float64(r.bytes)/float64(max(r.records, 1)), loadavg())
}

func newAdmin(b *testing.B, brokers []string) *kadm.Client {
	b.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// runStream runs the streaming job once over f into fresh topics and a
// fresh Pebble store, with the results DB writer running alongside, and
// checks the stored counts (outside the timer).
func runStream(b *testing.B, brokers []string, adm *kadm.Client, f filled, withoutDigests bool) (r streamRun) {
	// The label goes to every goroutine started from here (the job's,
	// the DB writer's), so -test.cpuprofile can split the variants:
	// go tool pprof -tagfocus digests=without.
	variant := map[bool]string{false: "with", true: "without"}[withoutDigests]
	// Or one CPU profile per run, in ADCLICK_BENCH_PROFILES (experiments
	// only; not with -test.cpuprofile): prism and the SDK harness start
	// their goroutines once per process, so labels do not split their work.
	if dir := os.Getenv("ADCLICK_BENCH_PROFILES"); dir != "" {
		pf, err := os.CreateTemp(dir, variant+"-*.pprof")
		if err != nil {
			b.Fatal(err)
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			b.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	pprof.Do(context.Background(), pprof.Labels("digests", variant), func(context.Context) {
		r = runStreamOnce(b, brokers, adm, f, withoutDigests)
	})
	return r
}

func runStreamOnce(b *testing.B, brokers []string, adm *kadm.Client, f filled, withoutDigests bool) streamRun {
	res := newTopic(b, brokers, "results", rawPartitions)
	dead := newTopic(b, brokers, "dead", 1)
	group := res + "-dbwriter"
	st, err := pebblestore.Open(b.TempDir(), pebblestore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	wctx, stopWriter := context.WithCancel(context.Background())
	wdone := make(chan error, 1)
	go func() {
		wdone <- dbwriter.Run(wctx, dbwriter.Config{Brokers: brokers, Topic: res, Group: group, Kind: dbwriter.Results}, st)
	}()

	cfg := transforms.DefaultConfig()
	cfg.Streaming = true
	cfg.WithoutDigests = withoutDigests
	scfg := pipelines.StreamConfig{
		Raw:         kafkaio.ReadConfig{Brokers: brokers, Topic: f.topic, EndOffsets: true},
		Results:     kafkaio.WriteConfig{Brokers: brokers, Topic: res},
		DeadLetters: kafkaio.WriteConfig{Brokers: brokers, Topic: dead},
		Aggregation: cfg,
	}
	if v := os.Getenv("ADCLICK_BENCH_ADVANCE"); v != "" { // experiments only
		scfg.Raw.MaxBundleAdvance, _ = time.ParseDuration(v)
	}
	var r streamRun
	cpu0 := cpuTime()
	t0 := time.Now()
	p, s := beam.NewPipelineWithRoot()
	if err := pipelines.Stream(s, scfg); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := runners.Run(ctx, p, runners.Options{Runner: runners.Prism}); err != nil {
		b.Fatal(err)
	}
	r.job = time.Since(t0)
	if err := waitCommitted(ctx, adm, group, res); err != nil {
		b.Fatal(err)
	}
	r.store = time.Since(t0)
	r.cpu = cpuTime() - cpu0
	stopWriter()
	if err := <-wdone; err != nil {
		b.Fatal(err)
	}

	b.StopTimer()
	defer b.StartTimer()
	r.records, r.bytes = topicSize(ctx, adm, res)
	total, err := storedClicks(st, f.from, f.to)
	if err != nil {
		b.Fatal(err)
	}
	if want := int64(f.unique - f.tooLate); total != want {
		b.Errorf("stored unfiltered counts sum to %d, want %d (unique %d − too late %d)", total, want, f.unique, f.tooLate)
	}
	return r
}

// topicSize is the records in topic and its size on the broker's disk (0 if
// the broker does not say).
func topicSize(ctx context.Context, adm *kadm.Client, topic string) (records, bytes int64) {
	ends, err := endOffsets(ctx, adm, topic)
	if err != nil {
		return 0, 0
	}
	set := kadm.TopicsSet{}
	for p, e := range ends {
		records += e
		set.Add(topic, p)
	}
	dirs, err := adm.DescribeAllLogDirs(ctx, set)
	if err != nil {
		return records, 0
	}
	dirs.Each(func(d kadm.DescribedLogDir) {
		for _, ps := range d.Topics {
			for _, p := range ps {
				bytes += p.Size
			}
		}
	})
	return records, bytes
}

// cpuTime is the user and system CPU this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
