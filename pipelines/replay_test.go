package pipelines_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/io/store/backend"
	"github.com/adclick/adclick/io/store/cassandrastore"
	"github.com/adclick/adclick/io/storeio"
	"github.com/adclick/adclick/pipelines"
	"github.com/adclick/adclick/runners"
	"github.com/adclick/adclick/testing/clickgen"
	"github.com/adclick/adclick/testing/reference"
	"github.com/adclick/adclick/testing/testenv"
	"github.com/adclick/adclick/transforms"
)

// Test data: a generated log with duplicates, late, too-late and malformed
// lines; a few ads, so top-N lists are truncated and ties happen.
var (
	testStart   = time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)
	testWindows = []int{1, 5, 15}
	testTopN    = 5
)

type testLog struct {
	lines    [][]byte
	clicks   []click.Click // every valid line, duplicates included
	truth    *clickgen.Truth
	from, to time.Time // whole minutes covering every valid click
}

func genLog(t testing.TB, n int) testLog {
	t.Helper()
	g, err := clickgen.New(clickgen.Config{Seed: 6, Ads: 40, Start: testStart, EventRate: float64(n) / 1200,
		DupShare: 0.05, LateShare: 0.03, TooLateShare: 0.02, MalformedShare: 0.01, Truth: true})
	if err != nil {
		t.Fatal(err)
	}
	var l testLog
	var p click.Parser
	lo, hi := int64(1<<62), int64(-1<<62)
	for i := 0; i < n; i++ {
		line := g.Next()
		b := append([]byte(nil), line.Data...)
		l.lines = append(l.lines, b)
		if c, err := p.Parse(b); err == nil {
			l.clicks = append(l.clicks, c)
			lo, hi = min(lo, c.Minute()), max(hi, c.Minute())
		}
	}
	l.truth = g.Truth()
	if l.truth.Count(clickgen.TooLate) == 0 || l.truth.Count(clickgen.Duplicate) == 0 {
		t.Fatalf("generated log lacks too-late or duplicate lines: %v", l.truth.Counts)
	}
	l.from, l.to = time.Unix(lo, 0).UTC(), time.Unix(hi+60, 0).UTC()
	return l
}

// awaitSwitch waits until another handle of cfg's store sees a generation
// commit: at once on Pebble (one store per process), within the generation
// cache TTL (1 s) on Cassandra.
func awaitSwitch(cfg backend.Config) {
	if cfg.Backend == backend.Cassandra {
		time.Sleep(1500 * time.Millisecond)
	}
}

func testConfig() transforms.Config {
	cfg := transforms.DefaultConfig()
	cfg.WindowSizes = testWindows
	cfg.TopN = testTopN
	return cfg
}

// pebbleStore is a fresh Pebble directory. Not t.TempDir: pipeline DoFns
// hold their own references to the process-shared store (backend.Open) and
// release them in Teardown, which the runner may call after the pipeline
// returned — a background compaction can still be writing when the test
// ends. Removal is retried briefly and a failure only logged.
func pebbleStore(t testing.TB) backend.Config {
	dir, err := os.MkdirTemp("", "adclick-pipelines-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := 0; ; i++ {
			err := os.RemoveAll(dir)
			if err == nil {
				return
			}
			if i == 50 {
				t.Logf("leaving %s: %v", dir, err)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	return backend.Config{Backend: backend.Pebble, Path: filepath.Join(dir, "db")}
}

// cassandraStore migrates a fresh keyspace on the real Cassandra (failing
// the test when none runs) and drops it at the end.
func cassandraStore(t testing.TB) backend.Config {
	hosts, ks := testenv.CassandraKeyspace(t, "adclick_pl")
	if err := cassandrastore.Migrate(context.Background(), cassandrastore.MigrateOptions{Hosts: hosts, Keyspace: ks}); err != nil {
		t.Fatal(err)
	}
	return backend.Config{Backend: backend.Cassandra, Hosts: hosts, Keyspace: ks, ReadConsistency: "ONE", WriteConsistency: "ONE"}
}

func openStore(t testing.TB, cfg backend.Config) store.Store {
	t.Helper()
	st, err := backend.Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// writeRaw stores every valid line (duplicates too: raw writes are
// idempotent), as the streaming job's raw sink does.
func writeRaw(t testing.TB, st store.Store, clicks []click.Click) {
	t.Helper()
	for i := 0; i < len(clicks); i += 2000 {
		if err := st.WriteRaw(context.Background(), clicks[i:min(i+2000, len(clicks))]); err != nil {
			t.Fatal(err)
		}
	}
}

// writeLive aggregates lines with the composite (cfg as given, so a test
// can set FaultCountryAs) and writes the records into the live generation.
func writeLive(t testing.TB, st backend.Config, lines [][]byte, cfg transforms.Config) {
	t.Helper()
	p, s := beam.NewPipelineWithRoot()
	out, err := transforms.Aggregate(s, beam.Create(s, click.Lines{Lines: lines, Watermark: click.NoWatermark}), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, recs := range out.RecordParts {
		if err := storeio.WriteAggregates(s, st, store.LiveGeneration, recs, storeio.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := runners.Run(context.Background(), p, runners.Options{Runner: runners.Prism}); err != nil {
		t.Fatal(err)
	}
}

// served is everything a store serves for [from, to): counts and filtered
// counts (ScanCounts) and every top list, keyed like reference.Results.
func served(t testing.TB, st store.Store, from, to time.Time) reference.Results {
	t.Helper()
	ctx := context.Background()
	var recs []result.Record
	if err := st.ScanCounts(ctx, from.Unix(), to.Unix(), func(r result.Record) error {
		recs = append(recs, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, w := range testWindows {
		for m := from.Unix(); m < to.Unix(); m += 60 {
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

// inRange keeps the reference results whose minute is in [from, to).
func inRange(r reference.Results, from, to time.Time) reference.Results {
	out := reference.Results{Counts: map[string]int64{}, Filtered: map[string]int64{}, Top: map[string][]result.AdCount{}}
	in := func(k string, minutePart int) bool {
		m, err := strconv.ParseInt(strings.Split(k, "/")[minutePart], 10, 64)
		return err == nil && m >= from.Unix() && m < to.Unix()
	}
	for k, v := range r.Counts {
		if in(k, 0) {
			out.Counts[k] = v
		}
	}
	for k, v := range r.Filtered {
		if in(k, 0) {
			out.Filtered[k] = v
		}
	}
	for k, v := range r.Top {
		if in(k, 1) {
			out.Top[k] = v
		}
	}
	return out
}

// diffResults describes how got differs from want (empty when equal).
func diffResults(got, want reference.Results) string {
	var d []string
	cmpMap := func(kind string, g, w map[string]int64) {
		for k, v := range w {
			if g[k] != v {
				d = append(d, fmt.Sprintf("%s %s = %d, want %d", kind, k, g[k], v))
			}
		}
		for k, v := range g {
			if _, ok := w[k]; !ok {
				d = append(d, fmt.Sprintf("%s %s = %d, want none", kind, k, v))
			}
		}
	}
	cmpMap("count", got.Counts, want.Counts)
	cmpMap("filtered", got.Filtered, want.Filtered)
	for k, v := range want.Top {
		if !reflect.DeepEqual(got.Top[k], v) {
			d = append(d, fmt.Sprintf("top %s = %v, want %v", k, got.Top[k], v))
		}
	}
	for k := range got.Top {
		if _, ok := want.Top[k]; !ok {
			d = append(d, fmt.Sprintf("top %s present, want none", k))
		}
	}
	sort.Strings(d)
	if len(d) > 10 {
		d = append(d[:10], fmt.Sprintf("... %d differences in all", len(d)))
	}
	return strings.Join(d, "\n")
}

func TestReplayPebble(t *testing.T)    { testReplay(t, pebbleStore(t), 12000) }
func TestReplayCassandra(t *testing.T) { testReplay(t, cassandraStore(t), 6000) }

// testReplay: the live generation holds results of a deliberately wrong run
// (GB counted as UK); a replay of a middle part of the range restores exactly
// the reference recount there — counts, filtered counts and top lists whose
// windows reach back before the range — and leaves the minutes outside the
// range as they were; a second replay, on the direct runner, changes nothing.
func testReplay(t *testing.T, cfg backend.Config, n int) {
	ctx := context.Background()
	l := genLog(t, n)
	st := openStore(t, cfg)
	writeRaw(t, st, l.clicks)
	faulty := testConfig()
	faulty.FaultCountryAs = [2]string{"GB", "UK"}
	writeLive(t, cfg, l.lines, faulty)

	ref := reference.Recount(l.lines, testWindows, testTopN, nil)
	from, to := testStart.Add(7*time.Minute), testStart.Add(13*time.Minute)
	before := served(t, st, l.from, l.to)
	if diffResults(inRange(before, from, to), inRange(ref, from, to)) == "" {
		t.Fatal("the faulty run stored correct results: the test would prove nothing")
	}
	if _, ok := before.Filtered[strconv.FormatInt(from.Unix(), 10)+"/country:UK/"+clickgen.AdID(0)]; !ok {
		t.Fatal("the faulty run stored no country:UK count for the top ad")
	}

	var gens []store.Generation
	for i := 0; i < 2; i++ {
		// The second replay runs on the direct runner: a cross-check of
		// the batch pipeline on another runner.
		runner := []string{runners.Prism, runners.Direct}[i]
		res, err := pipelines.Replay(ctx, pipelines.ReplayOptions{Store: cfg, From: from, To: to, Config: testConfig(),
			Runner: runners.Options{Runner: runner}})
		if err != nil {
			t.Fatalf("replay %d: %v", i+1, err)
		}
		gens = append(gens, res.Generation)
		awaitSwitch(cfg)
		if res.ClicksRead == 0 || res.RecordsWritten == 0 {
			t.Errorf("replay %d read %d clicks and wrote %d records", i+1, res.ClicksRead, res.RecordsWritten)
		}
		after := served(t, st, l.from, l.to)
		if d := diffResults(inRange(after, from, to), inRange(ref, from, to)); d != "" {
			t.Errorf("replay %d: served results in [%s, %s) differ from the reference recount:\n%s", i+1, from, to, d)
		}
		// Outside the range nothing changed.
		for _, r := range [][2]time.Time{{l.from, from}, {to, l.to}} {
			if d := diffResults(inRange(after, r[0], r[1]), inRange(before, r[0], r[1])); d != "" {
				t.Errorf("replay %d changed results outside the range, in [%s, %s):\n%s", i+1, r[0], r[1], d)
			}
		}
	}
	if gens[0] == gens[1] || gens[0] == store.LiveGeneration {
		t.Errorf("replays used generations %v, want two fresh ones", gens)
	}
}

// TestReplayErrors: bad ranges and configurations fail with clear errors
// before anything is written.
func TestReplayErrors(t *testing.T) {
	cfg := pebbleStore(t)
	at := testStart
	for _, tc := range []struct {
		name     string
		o        pipelines.ReplayOptions
		contains string
	}{
		{"empty range", pipelines.ReplayOptions{Store: cfg, From: at, To: at, Config: testConfig()}, "empty"},
		{"reversed", pipelines.ReplayOptions{Store: cfg, From: at.Add(time.Minute), To: at, Config: testConfig()}, "empty"},
		{"not whole minutes", pipelines.ReplayOptions{Store: cfg, From: at.Add(time.Second), To: at.Add(time.Hour), Config: testConfig()}, "whole minutes"},
		{"no from", pipelines.ReplayOptions{Store: cfg, To: at, Config: testConfig()}, "both"},
		{"bad store", pipelines.ReplayOptions{Store: backend.Config{Backend: "mysql"}, From: at, To: at.Add(time.Hour), Config: testConfig()}, "unknown store backend"},
		{"bad config", pipelines.ReplayOptions{Store: cfg, From: at, To: at.Add(time.Hour), Config: transforms.Config{}}, "window size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pipelines.Replay(context.Background(), tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.contains) {
				t.Fatalf("Replay = %v, want an error containing %q", err, tc.contains)
			}
			if !errors.Is(err, store.ErrInvalid) {
				t.Errorf("error %v does not wrap store.ErrInvalid", err)
			}
		})
	}
}

func TestParseMinute(t *testing.T) {
	want := time.Date(2024, 1, 1, 10, 5, 0, 0, time.UTC)
	for _, tc := range []struct {
		in  string
		ok  bool
		why string
	}{
		{"2024-01-01T10:05:00Z", true, ""},
		{"2024-01-01T11:05:00+01:00", true, ""},
		{"2024-01-01T10:05", true, ""},
		{strconv.FormatInt(want.Unix(), 10), true, ""},
		{"", false, "empty"},
		{"2024-01-01T10:05:30Z", false, "whole minute"},
		{"2024-01-01T10:05:00.5Z", false, "whole minute"},
		{strconv.FormatInt(want.Unix()+1, 10), false, "whole minute"},
		{"yesterday", false, "not a time"},
		{"60", false, "2000-2100"},
		{"9999999999999", false, "out of range"},
		{"-60", false, "not a time"},
	} {
		got, err := pipelines.ParseMinute(tc.in)
		switch {
		case tc.ok && (err != nil || !got.Equal(want)):
			t.Errorf("ParseMinute(%q) = %v, %v; want %v", tc.in, got, err, want)
		case !tc.ok && (err == nil || !strings.Contains(err.Error(), tc.why)):
			t.Errorf("ParseMinute(%q) = %v, %v; want an error containing %q", tc.in, got, err, tc.why)
		}
	}
}

func TestReplayAtomicPebble(t *testing.T)    { testReplayAtomic(t, pebbleStore(t), 12000) }
func TestReplayAtomicCassandra(t *testing.T) { testReplayAtomic(t, cassandraStore(t), 4000) }

// testReplayAtomic reads while a replay runs: every read of the whole range
// sees the old (faulty) values or the new (correct) ones, never a mix.
func testReplayAtomic(t *testing.T, cfg backend.Config, n int) {
	ctx := context.Background()
	l := genLog(t, n)
	st := openStore(t, cfg)
	writeRaw(t, st, l.clicks)
	faulty := testConfig()
	faulty.FaultCountryAs = [2]string{"GB", "UK"}
	writeLive(t, cfg, l.lines, faulty)
	from, to := l.from, l.to

	// What one read observes: per ad, the country:GB and country:UK totals
	// over the whole range, and the sum of every filtered count (ScanCounts).
	type obs struct {
		gb, uk  map[string]int64
		scanned int64
	}
	ads := []string{clickgen.AdID(0), clickgen.AdID(1), clickgen.AdID(2)}
	read := func(scan bool) (obs, error) {
		o := obs{gb: map[string]int64{}, uk: map[string]int64{}}
		for _, ad := range ads {
			var err error
			if o.gb[ad], err = st.Count(ctx, ad, "country:GB", from.Unix(), to.Unix()); err != nil {
				return o, err
			}
			if o.uk[ad], err = st.Count(ctx, ad, "country:UK", from.Unix(), to.Unix()); err != nil {
				return o, err
			}
		}
		if !scan { // a whole-range scan is slow on Cassandra: not every read
			o.scanned = -1
			return o, nil
		}
		err := st.ScanCounts(ctx, from.Unix(), to.Unix(), func(r result.Record) error {
			if r.Filtered != nil && r.Filtered.FilterID == "country:GB" {
				o.scanned += r.Filtered.Count
			}
			return nil
		})
		return o, err
	}
	old, err := read(true)
	if err != nil {
		t.Fatal(err)
	}
	ref := reference.Recount(l.lines, testWindows, testTopN, nil)
	neu := obs{gb: map[string]int64{}, uk: map[string]int64{}}
	for k, v := range ref.Filtered {
		p := strings.Split(k, "/")
		if p[1] == "country:GB" {
			neu.scanned += v
			if slices.Contains(ads, p[2]) {
				neu.gb[p[2]] += v
			}
		}
	}
	for _, ad := range ads {
		if old.gb[ad] != 0 || old.uk[ad] != neu.gb[ad] || neu.gb[ad] == 0 {
			t.Fatalf("faulty run: ad %s GB %d UK %d, reference GB %d: want GB 0 and UK = reference GB > 0", ad, old.gb[ad], old.uk[ad], neu.gb[ad])
		}
		neu.uk[ad] = 0
	}

	// Meanwhile the "streaming job" keeps writing newer minutes (after the
	// range) into the live generation.
	liveDone := make(chan struct{})
	liveWrites := make(chan int64, 1)
	go func() {
		var n int64
		defer func() { liveWrites <- n }()
		for {
			select {
			case <-liveDone:
				return
			default:
			}
			m := to.Unix() + 60*(n%10)
			if err := st.Upsert(ctx, store.LiveGeneration, []result.Record{{Count: &result.Count{AdID: "ad-live", Minute: m, Count: n/10 + 1}}}); err != nil {
				t.Error(err)
				return
			}
			n++
			time.Sleep(5 * time.Millisecond)
		}
	}()
	done := make(chan error, 1)
	go func() {
		_, err := pipelines.Replay(ctx, pipelines.ReplayOptions{Store: cfg, From: from, To: to, Config: testConfig(),
			Write: storeio.WriteOptions{Batch: 200}})
		done <- err
	}()
	var (
		reads      int
		sawOld     int
		sawNew     int
		replayErr  error
		replayDone bool
	)
	for !replayDone {
		select {
		case replayErr = <-done:
			replayDone = true
		default:
		}
		o, err := read(reads%4 == 3)
		if err != nil {
			t.Fatal(err)
		}
		reads++
		// Each call reads the whole range: its value is the old one or the
		// new one (separate calls may straddle the switch).
		allOld, allNew := true, true
		oneOf := func(what string, got, o, n int64) {
			allOld, allNew = allOld && got == o, allNew && got == n
			if got != o && got != n {
				t.Errorf("read %d during the replay: %s = %d, a mix of the old value %d and the new %d", reads, what, got, o, n)
			}
		}
		for _, ad := range ads {
			oneOf("Count("+ad+", country:GB)", o.gb[ad], old.gb[ad], neu.gb[ad])
			oneOf("Count("+ad+", country:UK)", o.uk[ad], old.uk[ad], neu.uk[ad])
		}
		if o.scanned != -1 {
			oneOf("ScanCounts Σ country:GB", o.scanned, old.scanned, neu.scanned)
		}
		if allOld {
			sawOld++
		} else if allNew {
			sawNew++
		}
	}
	close(liveDone)
	nLive := <-liveWrites
	if replayErr != nil {
		t.Fatal(replayErr)
	}
	// The live writes of newer minutes all show: Σ over the 10 minutes of
	// each minute's last value.
	var wantLive int64
	for i := int64(0); i < min(nLive, 10); i++ {
		wantLive += (nLive-1-i)/10 + 1 // the last write to minute (nLive-1-i)%10
	}
	if got, err := st.Count(ctx, "ad-live", "", to.Unix(), to.Add(10*time.Minute).Unix()); err != nil || got != wantLive || nLive == 0 {
		t.Errorf("live writes of newer minutes during the replay: count %d, %v; want %d from %d writes", got, err, wantLive, nLive)
	}
	awaitSwitch(cfg)
	o, err := read(true)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(o, neu) {
		t.Errorf("after the replay: %+v, want %+v", o, neu)
	}
	t.Logf("%d reads during the replay: %d saw the old values, %d the new", reads, sawOld, sawNew)
	if sawOld == 0 {
		t.Error("no read saw the old values while the replay ran")
	}
}
