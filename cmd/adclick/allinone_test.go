package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// TestAllInOne runs `adclick allinone` the way `make run` does (smaller
// rate), waits for live top lists on the API, stops it as Ctrl-C does, and
// starts it again on the same data directory: the stored results are served
// at once, before the new run produced anything, and live data resumes.
func TestAllInOne(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "allinone")
	type top struct {
		Minute string `json:"minute"`
		Ads    []struct {
			AdID  string `json:"ad_id"`
			Count int64  `json:"count"`
		} `json:"ads"`
	}
	start := func() (base string, stop func() int) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		ctx, cancel := context.WithCancel(context.Background())
		var errb syncWriter
		done := make(chan int, 1)
		go func() {
			done <- run(ctx, []string{"allinone", "--data-dir", dir, "--listen", addr, "--rate", "300", "--partitions", "2"},
				serveEnv(&errb, nil))
		}()
		return "http://" + addr, func() int {
			cancel()
			select {
			case code := <-done:
				if code != 0 {
					t.Logf("stderr: %s", errb.String())
				}
				return code
			case <-time.After(60 * time.Second):
				t.Fatalf("allinone did not stop within 60 s of its context ending: %s", errb.String())
				return -1
			}
		}
	}
	latest := func(base string) (top, bool) {
		res, err := http.Get(base + "/ads/popular_ads?window_size=1&top_n=3")
		if err != nil {
			return top{}, false
		}
		defer res.Body.Close()
		var tp top
		if res.StatusCode != 200 || json.NewDecoder(res.Body).Decode(&tp) != nil || len(tp.Ads) == 0 {
			return top{}, false
		}
		return tp, true
	}
	waitTop := func(base string, within time.Duration, ok func(top) bool) (top, bool) {
		deadline := time.Now().Add(within)
		for time.Now().Before(deadline) {
			if tp, found := latest(base); found && ok(tp) {
				return tp, true
			}
			time.Sleep(200 * time.Millisecond)
		}
		return top{}, false
	}

	base, stop := start()
	first, ok := waitTop(base, 90*time.Second, func(tp top) bool { return tp.Ads[0].Count > 0 })
	if !ok {
		stop()
		t.Fatal("no top list on the API within 90 s of starting")
	}
	if code := stop(); code != 0 {
		t.Fatalf("allinone exited %d after Ctrl-C", code)
	}

	base, stop = start()
	defer stop()
	// The store outlives the process: what was served is there before the new
	// run has read anything.
	again, ok := waitTop(base, 30*time.Second, func(top) bool { return true })
	if !ok {
		t.Fatal("after a restart the API serves no top list: stored results were lost")
	}
	if again.Minute < first.Minute {
		t.Errorf("after a restart the newest top list is for %s, older than %s before it", again.Minute, first.Minute)
	}
	// And it carries on: a newer minute, or higher counts in the same one.
	if _, ok := waitTop(base, 120*time.Second, func(tp top) bool {
		return tp.Minute > again.Minute || tp.Ads[0].Count > again.Ads[0].Count
	}); !ok {
		t.Error("after a restart the top lists never moved on")
	}
}
