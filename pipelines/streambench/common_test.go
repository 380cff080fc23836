package streambench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/io/kafkaio"
	"github.com/adclick/adclick/services/logwatch"
	"github.com/adclick/adclick/testing/clickgen"
	"github.com/adclick/adclick/testing/testenv"
)

// benchLines is the size of the pre-filled raw topic: 1,000,000, or
// ADCLICK_BENCH_LINES for a quicker look (figures in BENCHMARKS.md use the
// default).
var benchLines = func() int {
	if n, err := strconv.Atoi(os.Getenv("ADCLICK_BENCH_LINES")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}()

// rawPartitions is the partition count of every raw and results topic (the
// all-in-one's default).
const rawPartitions = 4

var topicSeq atomic.Int64

// newTopic creates a fresh topic with a name unique to this process and call.
func newTopic(b *testing.B, brokers []string, what string, partitions int32) string {
	b.Helper()
	name := fmt.Sprintf("streambench-%d-%d-%s-%d", os.Getpid(), time.Now().UnixNano(), what, topicSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafkaio.EnsureTopic(ctx, brokers, name, partitions); err != nil {
		b.Fatal(err)
	}
	return name
}

// filled is the pre-filled raw topic shared by the benchmarks of one process.
type filled struct {
	topic    string
	lines    int   // records in the topic
	valid    int   // of which parse
	unique   int   // distinct valid event ids
	tooLate  int   // distinct valid event ids the generator made too late
	from, to int64 // minute range of the valid event times [from, to), Unix s
}

// traffic is the ad distribution of a pre-filled topic.
type traffic struct {
	name    string
	ads     int
	uniform bool
}

// Traffics: the generator's default, and the seed's cardinality (2M ads)
// Zipf-distributed and uniform.
var traffics = []traffic{{"ads1000", 1000, false}, {"zipf2M", 2_000_000, false}, {"uniform2M", 2_000_000, true}}

var (
	fillMu sync.Mutex
	fills  = map[string]filled{}
)

// prefilled fills, once per process and traffic, a 4-partition topic of the
// real Kafka with benchLines generated lines published as the log watcher
// does (logwatch.LineRecord).
// Traffic: tr's ads over 10 minutes of event time ending about five minutes
// ago, 5% duplicates, 2% late, 0.5% too late, 1% malformed.
func prefilled(b *testing.B, brokers []string, tr traffic) filled {
	b.Helper()
	fillMu.Lock()
	defer fillMu.Unlock()
	if f, ok := fills[tr.name]; ok {
		return f
	}
	var fill filled
	var fillErr error
	func() {
		fill.topic = newTopic(b, brokers, "raw", rawPartitions)
		start := time.Now().Add(-15 * time.Minute).Truncate(time.Minute)
		g, err := clickgen.New(clickgen.Config{Seed: 4, Ads: tr.ads, Uniform: tr.uniform, Start: start, EventRate: float64(benchLines) / 600.0,
			DupShare: 0.05, LateShare: 0.02, TooLateShare: 0.005, MalformedShare: 0.01, Truth: true})
		if err != nil {
			fillErr = err
			return
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(fill.topic),
			kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(200_000))
		if err != nil {
			fillErr = err
			return
		}
		defer cl.Close()
		var p click.Parser
		var perr atomic.Value
		seen := make(map[string]struct{}, benchLines)
		fill.from, fill.to = 1<<62, -1<<62
		ctx := context.Background()
		for range benchLines {
			l := g.Next()
			data := append([]byte(nil), l.Data...)
			r, _ := logwatch.LineRecord(&p, data, time.Now())
			if c, err := p.Parse(data); err == nil {
				fill.valid++
				if _, dup := seen[c.EventID]; !dup {
					seen[c.EventID] = struct{}{}
					fill.unique++
				}
				fill.from, fill.to = min(fill.from, c.Minute()), max(fill.to, c.Minute()+60)
			}
			cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
				if err != nil {
					perr.Store(err)
				}
			})
			fill.lines++
		}
		if err := cl.Flush(ctx); err != nil {
			fillErr = err
			return
		}
		if err, _ := perr.Load().(error); err != nil {
			fillErr = err
			return
		}
		fill.tooLate = len(g.Truth().TooLate)
	}()
	if fillErr != nil {
		b.Fatal(fillErr)
	}
	fills[tr.name] = fill
	return fill
}

// endOffsets lists the high watermark of every partition of topic.
func endOffsets(ctx context.Context, adm *kadm.Client, topic string) (map[int32]int64, error) {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	var lerr error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			lerr = o.Err
		}
		out[o.Partition] = o.Offset
	})
	return out, lerr
}

// waitCommitted polls until group has committed, on every partition of
// topic, the end offset the topic has now: a DB writer commits only what the
// store acknowledged, so then everything in the topic is in the store.
func waitCommitted(ctx context.Context, adm *kadm.Client, group, topic string) error {
	ends, err := endOffsets(ctx, adm, topic)
	if err != nil {
		return err
	}
	for {
		resp, err := adm.FetchOffsets(ctx, group)
		if err == nil {
			done := true
			for p, end := range ends {
				if end == 0 {
					continue
				}
				o, ok := resp.Lookup(topic, p)
				if !ok || o.Err != nil || o.At < end {
					done = false
					break
				}
			}
			if done {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("group %s did not reach the end of %s: %w", group, topic, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// consumeAll reads every record topic has now, from the start, in one
// goroutine (franz-go fetches in the background), calling fn for each.
func consumeAll(ctx context.Context, brokers []string, topic string, fn func(*kgo.Record)) (int, error) {
	adm, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return 0, err
	}
	ends, err := endOffsets(ctx, kadm.NewClient(adm), topic)
	adm.Close()
	if err != nil {
		return 0, err
	}
	offs := map[int32]kgo.Offset{}
	left := 0
	for p, end := range ends {
		if end > 0 {
			offs[p] = kgo.NewOffset().AtStart()
			left++
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offs}),
		kgo.FetchMaxBytes(16<<20), kgo.FetchMaxPartitionBytes(8<<20))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	n := 0
	for left > 0 {
		fs := cl.PollRecords(ctx, 10_000)
		if err := ctx.Err(); err != nil {
			return n, err
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil && !errors.Is(ferr, context.Canceled) {
			return n, ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			fn(r)
			n++
			if r.Offset+1 == ends[r.Partition] {
				left--
			}
		})
	}
	return n, nil
}

// loadavg is the machine's load average, for the figures' labels.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		out, _ := exec.Command("uptime").Output()
		return strings.TrimSpace(string(out))
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return string(b)
	}
	return strings.Join(f[:3], " ")
}

func brokersOf(b *testing.B) []string { return testenv.Kafka(b) }
