package main

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/adclick/adclick/queryapi/internal/demodata"
)

// scenario returns a generator of request paths. Paths are built with
// appends, not fmt, to keep the generator's share of the CPU small.
func scenario(name string, ads, minutes int) (func(r *rand.Rand) string, error) {
	span := minutes - 60
	if span < 1 {
		span = 1
	}
	adIDs := make([]string, ads)
	for i := range adIDs {
		adIDs[i] = demodata.AdID(i)
	}
	switch name {
	case "count60", "count60-filter":
		filter := ""
		if name == "count60-filter" {
			filter = "&filter_id=country:US"
		}
		return func(r *rand.Rand) string {
			from := demoStart + int64(r.IntN(span))*60
			b := make([]byte, 0, 96)
			b = append(b, "/ads/"...)
			b = append(b, adIDs[r.IntN(ads)]...)
			b = append(b, "/aggregated_count?from="...)
			b = strconv.AppendInt(b, from, 10)
			b = append(b, "&to="...)
			b = strconv.AppendInt(b, from+3600, 10)
			b = append(b, filter...)
			return string(b)
		}, nil
	case "popular":
		ws := []int{1, 5, 15, 60}
		return func(r *rand.Rand) string {
			b := make([]byte, 0, 80)
			b = append(b, "/ads/popular_ads?top_n=10&window_size="...)
			b = strconv.AppendInt(b, int64(ws[r.IntN(4)]), 10)
			if r.IntN(4) != 0 { // three in four ask for a given minute
				b = append(b, "&minute="...)
				b = strconv.AppendInt(b, demoStart+int64(r.IntN(minutes))*60, 10)
			}
			return string(b)
		}, nil
	}
	return nil, fmt.Errorf("unknown scenario %q", name)
}

type result struct {
	lat      []time.Duration
	rate     float64
	bad      int
	firstBad string
}

func (r result) p(q float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(q * float64(len(r.lat)-1))
	return r.lat[i]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func load(base, tok string, gen func(*rand.Rand) string, conns int, d time.Duration, kind string) result {
	var newReq func() requester
	switch kind {
	case "std":
		tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		newReq = func() requester {
			return &stdClient{c: client, base: base, auth: "Bearer " + tok, buf: make([]byte, 32<<10)}
		}
	default:
		host := strings.TrimPrefix(base, "http://")
		newReq = func() requester { return &rawClient{host: host, auth: "Bearer " + tok} }
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		all      []time.Duration
		bad      int
		firstBad string
	)
	deadline := time.Now().Add(d)
	start := time.Now()
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			rq := newReq()
			defer rq.close()
			r := rand.New(rand.NewPCG(seed, 7))
			lat := make([]time.Duration, 0, 1<<16)
			nbad, fb := 0, ""
			for time.Now().Before(deadline) {
				path := gen(r)
				t0 := time.Now()
				code, err := rq.get(path)
				lat = append(lat, time.Since(t0))
				if err != nil || code != 200 {
					nbad++
					if fb == "" {
						fb = fmt.Sprintf("%s: status %d, %v", path, code, err)
					}
				}
			}
			mu.Lock()
			all = append(all, lat...)
			bad += nbad
			if firstBad == "" {
				firstBad = fb
			}
			mu.Unlock()
		}(uint64(w))
	}
	wg.Wait()
	el := time.Since(start)
	slices.Sort(all)
	return result{lat: all, rate: float64(len(all)) / el.Seconds(), bad: bad, firstBad: firstBad}
}
