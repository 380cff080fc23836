package storeio_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/io/store/backend"
	"github.com/adclick/adclick/io/store/cassandrastore"
	"github.com/adclick/adclick/io/storeio"
	"github.com/adclick/adclick/testing/testenv"
	"github.com/adclick/adclick/transforms"
)

func init() {
	register.Function2x0(eventIDs)
	register.Function2x1(recordJSON)
	register.Emitter1[string]()
}

func TestMain(m *testing.M) { ptest.Main(m) }

func eventIDs(b click.Batch, emit func(string)) {
	for _, c := range b.Clicks {
		emit(c.EventID)
	}
}

func recordJSON(r result.Record, emit func(string)) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	emit(string(b))
	return nil
}

// testClicks makes n clicks with unique ids over two hours from base, on 30
// ads with a few attributes, in batches of 250.
func testClicks(base time.Time, n int) []click.Batch {
	rng := rand.New(rand.NewPCG(7, 9))
	var out []click.Batch
	var cur []click.Click
	for i := 0; i < n; i++ {
		cur = append(cur, click.Click{
			EventID: fmt.Sprintf("ev-%06d", i), AdID: fmt.Sprintf("ad-%02d", rng.IntN(30)),
			Time:    base.UnixMilli() + rng.Int64N(2*3600*1000),
			Country: []string{"US", "DE", "", "広"}[rng.IntN(4)], Device: []string{"ios", "android"}[rng.IntN(2)],
		})
		if len(cur) == 250 {
			out = append(out, click.Batch{Clicks: cur})
			cur = nil
		}
	}
	if len(cur) > 0 {
		out = append(out, click.Batch{Clicks: cur})
	}
	return out
}

func pebbleConfig(t *testing.T) backend.Config {
	return backend.Config{Backend: backend.Pebble, Path: filepath.Join(t.TempDir(), "db")}
}

func cassandraConfig(t *testing.T) backend.Config {
	hosts, ks := testenv.CassandraKeyspace(t, "adclick_io")
	if err := cassandrastore.Migrate(context.Background(), cassandrastore.MigrateOptions{Hosts: hosts, Keyspace: ks}); err != nil {
		t.Fatal(err)
	}
	return backend.Config{Backend: backend.Cassandra, Hosts: hosts, Keyspace: ks, ReadConsistency: "ONE", WriteConsistency: "ONE"}
}

func TestPebble(t *testing.T)    { testRoundTrip(t, pebbleConfig(t)) }
func TestCassandra(t *testing.T) { testRoundTrip(t, cassandraConfig(t)) }

// testRoundTrip writes clicks through WriteRaw (twice: idempotent), reads them
// back through ReadRaw, and checks that aggregating what was read gives the
// same records as aggregating the original clicks; then writes those records
// through WriteAggregates and checks the store's counts.
func testRoundTrip(t *testing.T, cfg backend.Config) {
	ctx := context.Background()
	base := time.Date(2031, 3, 4, 10, 0, 0, 0, time.UTC)
	batches := testClicks(base, 6000)

	// Write, with a batch size that forces flushes inside a bundle, and the
	// first batches twice.
	p, s := beam.NewPipelineWithRoot()
	in := beam.CreateList(s, append(batches, batches[:3]...))
	if err := storeio.WriteRaw(s, cfg, in, storeio.WriteOptions{Batch: 700}); err != nil {
		t.Fatal(err)
	}
	ptest.RunAndValidate(t, p)

	st, err := backend.Open(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stored := 0
	shards, err := st.RawShards(ctx, base, base.Add(2*time.Hour), 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range shards {
		if err := st.ReadRaw(ctx, sh, func(click.Click) error { stored++; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if stored != 6000 {
		t.Fatalf("stored %d clicks, want 6000 (idempotent writes)", stored)
	}

	readAndReaggregate(t, cfg, base, batches)
	checkServedCounts(t, st, base, batches)
}

// readAndReaggregate reads back the whole range and a part of it through
// ReadRaw, checks the aggregates of what was read against those of the
// original clicks, and writes them through WriteAggregates.
func readAndReaggregate(t *testing.T, cfg backend.Config, base time.Time, batches []click.Batch) {
	var ids, firstHour []string
	for _, b := range batches {
		for _, c := range b.Clicks {
			ids = append(ids, c.EventID)
			if c.Time < base.Add(time.Hour).UnixMilli() {
				firstHour = append(firstHour, c.EventID)
			}
		}
	}
	cfgT := transforms.DefaultConfig()
	cfgT.WindowSizes = []int{1, 5}
	cfgT.TopN = 10
	p, s := beam.NewPipelineWithRoot()
	read, err := storeio.ReadRaw(s, cfg, base, base.Add(2*time.Hour), storeio.ReadOptions{Shards: 7, Batch: 100})
	if err != nil {
		t.Fatal(err)
	}
	passert.EqualsList(s, beam.ParDo(s, eventIDs, read), ids)
	part, err := storeio.ReadRaw(s.Scope("part"), cfg, base, base.Add(time.Hour), storeio.ReadOptions{Shards: 3})
	if err != nil {
		t.Fatal(err)
	}
	passert.EqualsList(s, beam.ParDo(s, eventIDs, part), firstHour)
	fromStore, err := transforms.AggregateClicks(s.Scope("store"), read, cfgT)
	if err != nil {
		t.Fatal(err)
	}
	fromOriginal, err := transforms.AggregateClicks(s.Scope("original"), beam.CreateList(s, batches), cfgT)
	if err != nil {
		t.Fatal(err)
	}
	passert.Equals(s, beam.ParDo(s, recordJSON, beam.Flatten(s, fromStore...)), beam.ParDo(s, recordJSON, beam.Flatten(s, fromOriginal...)))
	for _, recs := range fromStore {
		if err := storeio.WriteAggregates(s, cfg, store.LiveGeneration, recs, storeio.WriteOptions{Batch: 333}); err != nil {
			t.Fatal(err)
		}
	}
	ptest.RunAndValidate(t, p)
}

// checkServedCounts: the aggregates written through WriteAggregates serve
// the true counts.
func checkServedCounts(t *testing.T, st store.Store, base time.Time, batches []click.Batch) {
	ctx := context.Background()
	want := map[string]int64{}
	wantUS := map[string]int64{}
	for _, b := range batches {
		for _, c := range b.Clicks {
			want[c.AdID]++
			if c.Country == "US" {
				wantUS[c.AdID]++
			}
		}
	}
	from, to := base.Unix(), base.Add(2*time.Hour).Unix()
	for ad, n := range want {
		got, err := st.Count(ctx, ad, "", from, to)
		if err != nil || got != n {
			t.Errorf("Count(%s) = %d, %v; want %d", ad, got, err, n)
		}
		got, err = st.Count(ctx, ad, "country:US", from, to)
		if err != nil || got != wantUS[ad] {
			t.Errorf("Count(%s, country:US) = %d, %v; want %d", ad, got, err, wantUS[ad])
		}
	}
	if m, err := st.LatestTopMinute(ctx, 5); err != nil || m >= to+5*60 || m < to-3600 { // top lists run 4 minutes past the last click
		t.Errorf("LatestTopMinute(5) = %d, %v", m, err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []backend.Config{{}, {Backend: "pebble"}, {Backend: "cassandra"}, {Backend: "mysql"}} {
		if _, err := backend.Open(context.Background(), c, nil); err == nil {
			t.Errorf("Open(%+v) succeeded", c)
		}
	}
}

func TestPebbleShared(t *testing.T) {
	cfg := pebbleConfig(t)
	ctx := context.Background()
	a, err := backend.Open(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := backend.Open(ctx, backend.Config{Backend: backend.Pebble, Path: cfg.Path + "/../db"}, nil)
	if err != nil {
		t.Fatalf("second Open of the same directory: %v", err)
	}
	if err := a.Upsert(ctx, 0, []result.Record{{Count: &result.Count{AdID: "x", Minute: 60, Count: 3}}}); err != nil {
		t.Fatal(err)
	}
	a.Close()
	a.Close() // a second Close of one reference releases nothing more
	if n, err := b.Count(ctx, "x", "", 0, 120); err != nil || n != 3 {
		t.Fatalf("Count through the other reference after one Close = %d, %v", n, err)
	}
	b.Close()
	if err := b.Ping(ctx); err == nil {
		t.Error("store still open after its last reference was closed")
	}
}

// TestReadEmptyRange: a range with no shards reads nothing and finishes.
func TestReadEmptyRange(t *testing.T) {
	cfg := pebbleConfig(t)
	at := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	p, s := beam.NewPipelineWithRoot()
	read, err := storeio.ReadRaw(s, cfg, at, at, storeio.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	passert.Empty(s, read)
	empty, err := storeio.ReadRaw(s.Scope("nothing stored"), cfg, at, at.Add(time.Hour), storeio.ReadOptions{Shards: 4})
	if err != nil {
		t.Fatal(err)
	}
	passert.Empty(s, empty)
	ptest.RunAndValidate(t, p)
	if _, err := storeio.ReadRaw(s, cfg, at.Add(time.Hour), at, storeio.ReadOptions{}); err == nil {
		t.Error("ReadRaw accepted a range that ends before it starts")
	}
}
