package storeio_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/io/store/backend"
	"github.com/adclick/adclick/io/storeio"
	"github.com/adclick/adclick/transforms"
)

// exampleStart is the event time the examples' clicks start at.
var exampleStart = time.Date(2030, 5, 1, 10, 0, 0, 0, time.UTC)

// exampleClicks are five clicks on two ads: three in the first hour from
// exampleStart, two in the second.
func exampleClicks() []click.Click {
	at := func(d time.Duration) int64 { return exampleStart.Add(d).UnixMilli() }
	return []click.Click{
		{EventID: "ev-1", AdID: "ad-a", Time: at(5 * time.Second), Country: "US", Device: "ios"},
		{EventID: "ev-2", AdID: "ad-b", Time: at(30 * time.Second), Country: "DE", Device: "android"},
		{EventID: "ev-3", AdID: "ad-a", Time: at(61 * time.Second), Country: "DE", Device: "ios"},
		{EventID: "ev-4", AdID: "ad-a", Time: at(70 * time.Minute), Country: "US", Device: "android"},
		{EventID: "ev-5", AdID: "ad-b", Time: at(90 * time.Minute), Country: "US", Device: "ios"},
	}
}

// pebbleInTempDir names an embedded Pebble store in a fresh temporary
// directory; cleanup removes it.
func pebbleInTempDir() (cfg backend.Config, cleanup func()) {
	dir, err := os.MkdirTemp("", "storeio-example-")
	if err != nil {
		log.Fatal(err)
	}
	return backend.Config{Backend: backend.Pebble, Path: filepath.Join(dir, "db")}, func() { os.RemoveAll(dir) }
}

// printRaw prints every click the store holds in [from, to), in event-time
// order (one shard of the embedded store reads in that order).
func printRaw(cfg backend.Config, from, to time.Time) {
	ctx := context.Background()
	st, err := backend.Open(ctx, cfg, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	shards, err := st.RawShards(ctx, from, to, 1)
	if err != nil {
		log.Fatal(err)
	}
	for _, sh := range shards {
		err := st.ReadRaw(ctx, sh, func(c click.Click) error {
			fmt.Println(time.UnixMilli(c.Time).UTC().Format("15:04:05"), c.EventID, c.AdID, c.Country)
			return nil
		})
		if err != nil {
			log.Fatal(err)
		}
	}
}

// WriteRaw stores the clicks of a PCollection<click.Batch>. A click written
// twice is stored once: a retried bundle may write its clicks again.
func ExampleWriteRaw() {
	cfg, cleanup := pebbleInTempDir()
	defer cleanup()

	clicks := exampleClicks()
	p, s := beam.NewPipelineWithRoot()
	batches := beam.Create(s, click.Batch{Clicks: clicks}, click.Batch{Clicks: clicks[:2]})
	if err := storeio.WriteRaw(s, cfg, batches, storeio.WriteOptions{}); err != nil {
		log.Fatal(err)
	}
	if err := ptest.Run(p); err != nil {
		log.Fatal(err)
	}

	printRaw(cfg, exampleStart, exampleStart.Add(2*time.Hour))
	// Output:
	// 10:00:05 ev-1 ad-a US
	// 10:00:30 ev-2 ad-b DE
	// 10:01:01 ev-3 ad-a DE
	// 11:10:00 ev-4 ad-a US
	// 11:30:00 ev-5 ad-b US
}

// ReadRaw reads the stored clicks of an event-time range as a
// PCollection<click.Batch>; here the first hour is copied into another store.
func ExampleReadRaw() {
	src, cleanupSrc := pebbleInTempDir()
	defer cleanupSrc()
	dst, cleanupDst := pebbleInTempDir()
	defer cleanupDst()

	// Any store.Store can hold the clicks to read; here they are written
	// directly.
	ctx := context.Background()
	st, err := backend.Open(ctx, src, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	if err := st.WriteRaw(ctx, exampleClicks()); err != nil {
		log.Fatal(err)
	}

	p, s := beam.NewPipelineWithRoot()
	firstHour, err := storeio.ReadRaw(s, src, exampleStart, exampleStart.Add(time.Hour), storeio.ReadOptions{Shards: 4})
	if err != nil {
		log.Fatal(err)
	}
	if err := storeio.WriteRaw(s, dst, firstHour, storeio.WriteOptions{}); err != nil {
		log.Fatal(err)
	}
	if err := ptest.Run(p); err != nil {
		log.Fatal(err)
	}

	printRaw(dst, exampleStart, exampleStart.Add(2*time.Hour))
	// Output:
	// 10:00:05 ev-1 ad-a US
	// 10:00:30 ev-2 ad-b DE
	// 10:01:01 ev-3 ad-a DE
}

// WriteAggregates stores aggregation results: here a recount of the raw
// clicks, written into a fresh generation that CommitGeneration then makes
// serve its range in one step.
func ExampleWriteAggregates() {
	cfg, cleanup := pebbleInTempDir()
	defer cleanup()
	ctx := context.Background()
	st, err := backend.Open(ctx, cfg, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	if err := st.WriteRaw(ctx, exampleClicks()); err != nil {
		log.Fatal(err)
	}
	from, to := exampleStart, exampleStart.Add(2*time.Hour)
	gen, err := st.NewGeneration(ctx, from.Unix(), to.Unix(), to.Unix())
	if err != nil {
		log.Fatal(err)
	}

	aggCfg := transforms.DefaultConfig()
	aggCfg.WindowSizes = []int{60}
	p, s := beam.NewPipelineWithRoot()
	clicks, err := storeio.ReadRaw(s, cfg, from, to, storeio.ReadOptions{})
	if err != nil {
		log.Fatal(err)
	}
	parts, err := transforms.AggregateClicks(s, clicks, aggCfg)
	if err != nil {
		log.Fatal(err)
	}
	for _, records := range parts { // each result collection in the stage that made it
		if err := storeio.WriteAggregates(s, cfg, gen, records, storeio.WriteOptions{}); err != nil {
			log.Fatal(err)
		}
	}
	if err := ptest.Run(p); err != nil {
		log.Fatal(err)
	}
	if err := st.CommitGeneration(ctx, gen); err != nil {
		log.Fatal(err)
	}

	for _, q := range []struct{ ad, filter string }{{"ad-a", ""}, {"ad-a", "country:US"}, {"ad-b", ""}} {
		n, err := st.Count(ctx, q.ad, q.filter, from.Unix(), to.Unix())
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s %q: %d\n", q.ad, q.filter, n)
	}
	// Output:
	// ad-a "": 3
	// ad-a "country:US": 2
	// ad-b "": 2
}
