package transforms

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/adclick/adclick/domain/click"
)

// Parallel work on large batches in the fused stage.
//
// A recount file is one bundle on one goroutine, so the stage would use one
// core. Large batches are therefore worked on by a few goroutines in two
// steps: every line is parsed (a pure function of the line) into a slice
// indexed by line; then the valid clicks are aggregated by shards, one
// goroutine each, a click going to the shard its event id's hash selects.
// Every copy of an event id lands in the same shard and each shard takes its
// clicks in line order, so "the first copy seen counts" holds exactly as if
// one goroutine had done it all; dead letters and valid clicks are emitted
// afterwards on the caller's goroutine, in line order.
const (
	// parallelMinLines: smaller batches (streaming polls) are parsed inline;
	// starting goroutines would cost more than it saves.
	parallelMinLines = 1024
	// parseChunk lines are what a worker takes at a time.
	parseChunk = 256
	// maxParseWorkers bounds the pool whatever GOMAXPROCS says.
	maxParseWorkers = 8
)

// parsed is one line's parse result. id is the event id's hash, computed by
// the worker too (valid lines only).
type parsed struct {
	c   click.Click
	err error
	id  clickID
}

// parseLine is the per-line work, shared by the inline and parallel paths.
func parseLine(p *click.Parser, line []byte, out *parsed) {
	c, err := p.Parse(line)
	*out = parsed{c: c, err: err}
	if err == nil {
		out.id = idOf(c.EventID)
	}
}

// parallelParser parses batches on up to len(parsers) goroutines, the
// caller's included. Not safe for concurrent use: one per DoFn instance.
type parallelParser struct {
	parsers []click.Parser
	out     []parsed
}

// newParallelParser returns nil when fewer than two workers would run.
func newParallelParser(workers int) *parallelParser {
	if workers < 2 {
		return nil
	}
	return &parallelParser{parsers: make([]click.Parser, workers)}
}

// workers is how many goroutines the parser uses, the caller's included.
func (pp *parallelParser) workers() int { return len(pp.parsers) }

// defaultParseWorkers sizes the pool by GOMAXPROCS.
func defaultParseWorkers() int { return min(runtime.GOMAXPROCS(0), maxParseWorkers) }

// parseAll parses every line. The result is valid until the next call; call
// release once done with it so the clicks' strings can be collected.
func (pp *parallelParser) parseAll(lines [][]byte) []parsed {
	n := len(lines)
	if cap(pp.out) < n {
		pp.out = make([]parsed, n)
	}
	out := pp.out[:n]
	chunks := (n + parseChunk - 1) / parseChunk
	var next atomic.Int64 // the first chunk nobody has taken
	parallel(min(len(pp.parsers), chunks), func(w int) {
		p := &pp.parsers[w]
		for {
			k := int(next.Add(1)) - 1
			if k >= chunks {
				return
			}
			for i, end := k*parseChunk, min((k+1)*parseChunk, n); i < end; i++ {
				parseLine(p, lines[i], &out[i])
			}
		}
	})
	return out
}

func (pp *parallelParser) release() { clear(pp.out) }

// parallel runs fn(0) … fn(n-1) on n goroutines, fn(0) on the caller's, and
// returns when all have. A panic in any of them is re-raised on the caller's
// goroutine, as it would be had the work been done inline, instead of
// crashing the worker process.
func parallel(n int, fn func(i int)) {
	var (
		wg       sync.WaitGroup
		panicked atomic.Pointer[string]
	)
	run := func(i int) {
		defer func() {
			if r := recover(); r != nil {
				msg := fmt.Sprintf("transforms: parallel work panicked: %v", r)
				panicked.CompareAndSwap(nil, &msg)
			}
		}()
		fn(i)
	}
	for i := 1; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run(i)
		}()
	}
	if n > 0 {
		run(0)
	}
	wg.Wait()
	if msg := panicked.Load(); msg != nil {
		panic(*msg)
	}
}
