package drills

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/testing/reference"
)

// kafkaAdmin wraps the admin calls the drills poll with.
type kafkaAdmin struct {
	adm *kadm.Client
}

func newKafkaAdmin(t *testing.T, brokers []string) *kafkaAdmin {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &kafkaAdmin{adm: kadm.NewClient(cl)}
}

// ends returns the end offset of every partition of topic.
func (k *kafkaAdmin) ends(ctx context.Context, topic string) (map[int32]int64, error) {
	lo, err := k.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	if err := lo.Error(); err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	lo.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}

// committed returns group's committed offsets of topic.
func (k *kafkaAdmin) committed(ctx context.Context, group, topic string) (map[int32]int64, error) {
	or, err := k.adm.FetchOffsets(ctx, group)
	if err != nil {
		return nil, err
	}
	if err := or.Error(); err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	for p, o := range or[topic] {
		out[p] = o.At
	}
	return out, nil
}

func sum(m map[int32]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// resultsTail follows a results topic from its start and keeps, per key, the
// record of the highest offset: what a DB writer that overwrites by key ends
// up storing (a key always lives on one partition).
type resultsTail struct {
	cl   *kgo.Client
	last map[string]result.Record
	// most is the largest count seen per count key: counts only grow, so a
	// last value below it is a stale update written after a newer one.
	most map[string]int64
}

// stale lists the count keys whose last value is below one seen before.
func (r *resultsTail) stale() []string {
	var out []string
	for k, rec := range r.last {
		if rec.Count != nil && rec.Count.Count < r.most[k] {
			out = append(out, fmt.Sprintf("%s: last %d, earlier %d", k, rec.Count.Count, r.most[k]))
		}
	}
	return out
}

func newResultsTail(t *testing.T, brokers []string, topic string) *resultsTail {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &resultsTail{cl: cl, last: map[string]result.Record{}, most: map[string]int64{}}
}

// poll reads what arrived within d.
func (r *resultsTail) poll(t *testing.T, d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	fs := r.cl.PollFetches(ctx)
	fs.EachRecord(func(k *kgo.Record) {
		var rec result.Record
		if err := json.Unmarshal(k.Value, &rec); err != nil {
			t.Errorf("bad result %q: %v", k.Value, err)
			return
		}
		r.last[rec.Key()] = rec
		if rec.Count != nil {
			r.most[rec.Key()] = max(r.most[rec.Key()], rec.Count.Count)
		}
	})
}

func (r *resultsTail) results() reference.Results {
	recs := make([]result.Record, 0, len(r.last))
	for _, rec := range r.last {
		recs = append(recs, rec)
	}
	return reference.FromRecords(recs)
}

// resultsEqual says whether two result sets are identical.
func resultsEqual(a, b reference.Results) bool {
	eq := func(x, y map[string]int64) bool {
		if len(x) != len(y) {
			return false
		}
		for k, v := range y {
			if w, ok := x[k]; !ok || w != v {
				return false
			}
		}
		return true
	}
	return eq(a.Counts, b.Counts) && eq(a.Filtered, b.Filtered) && reflect.DeepEqual(a.Top, b.Top)
}

// readStore reads every count, filtered count and top list of the minutes
// [from, to) from st.
func readStore(t *testing.T, st store.Store, from, to int64, windowSizes []int) reference.Results {
	t.Helper()
	ctx := context.Background()
	var recs []result.Record
	if err := st.ScanCounts(ctx, from, to, func(r result.Record) error {
		recs = append(recs, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, w := range windowSizes {
		for m := from; m < to; m += 60 {
			top, err := st.Top(ctx, w, m)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			recs = append(recs, result.Record{Top: &top})
		}
	}
	return reference.FromRecords(recs)
}

// rawCoverage reads the whole raw topic and returns how many records it
// holds and how many of lines are on none of them: when the store misses
// clicks, it tells the log watcher's side from the streaming job's.
func rawCoverage(t *testing.T, brokers []string, topic string, ends map[int32]int64, lines [][]byte) (records, missing int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seen := map[string]bool{}
	read := map[int32]int64{}
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
		done := true
		for p, e := range ends {
			done = done && read[p] >= e
		}
		if done {
			break
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			records++
			seen[string(r.Value)] = true
			read[r.Partition] = r.Offset + 1
		})
	}
	for _, l := range lines {
		if !seen[string(l)] {
			missing++
		}
	}
	return records, missing
}
