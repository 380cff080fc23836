package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/testing/reference"
)

// ResultsTail follows a results topic from its start and keeps, per key, the
// record of the highest offset: what a DB writer that overwrites by key ends
// up storing (a key always lives on one partition).
type ResultsTail struct {
	cl   *kgo.Client
	last map[string]result.Record
	// most is the largest count seen per count key: counts only grow, so a
	// last value below it is a stale update written after a newer one.
	most map[string]int64
}

// NewResultsTail starts following topic; the client closes with the test.
// opts are extra client options (a secured broker's TLS and SASL).
func NewResultsTail(t testing.TB, brokers []string, topic string, opts ...kgo.Opt) *ResultsTail {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &ResultsTail{cl: cl, last: map[string]result.Record{}, most: map[string]int64{}}
}

// Poll reads what arrived within d.
func (r *ResultsTail) Poll(t testing.TB, d time.Duration) {
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

// Stale lists the count keys whose last value is below one seen before.
func (r *ResultsTail) Stale() []string {
	var out []string
	for k, rec := range r.last {
		if rec.Count != nil && rec.Count.Count < r.most[k] {
			out = append(out, fmt.Sprintf("%s: last %d, earlier %d", k, rec.Count.Count, r.most[k]))
		}
	}
	return out
}

// Results is the last record of every key, as reference results.
func (r *ResultsTail) Results() reference.Results {
	recs := make([]result.Record, 0, len(r.last))
	for _, rec := range r.last {
		recs = append(recs, rec)
	}
	return reference.FromRecords(recs)
}

// ResultsEqual says whether two result sets are identical.
func ResultsEqual(a, b reference.Results) bool {
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

// ReadStore reads every count, filtered count and top list of the minutes
// [from, to) from st.
func ReadStore(t testing.TB, st store.Store, from, to int64, windowSizes []int) reference.Results {
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
