package transforms

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/adclick/adclick/transforms/click"
)

// Parallel parsing of large batches in the fused stage.
//
// Strict validation is the costliest per-line step, and a recount file is
// one bundle on one goroutine, so the stage would use one core. Large
// batches are therefore parsed by a few goroutines, each with its own
// click.Parser, into a slice indexed by line; the stage then feeds the
// results to the bundle aggregator sequentially, in line order. Parsing is a
// pure function of the line, so everything order-dependent (first copy of an
// event id wins, dead letters in order, metrics) is exactly as if the lines
// had been parsed one by one.
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

// defaultParseWorkers sizes the pool by GOMAXPROCS.
func defaultParseWorkers() int { return min(runtime.GOMAXPROCS(0), maxParseWorkers) }

// parse parses lines and calls each for every line, in line order, on the
// caller's goroutine. Helpers take chunks in order; the caller hands each
// chunk to each as soon as it is parsed, and parses the next chunk itself
// when no helper has taken it yet, so aggregating one chunk overlaps with
// parsing the following ones. The *parsed is valid only during the call.
func (pp *parallelParser) parse(lines [][]byte, each func(i int, r *parsed)) {
	n := len(lines)
	if cap(pp.out) < n {
		pp.out = make([]parsed, n)
	}
	out := pp.out[:n]
	defer clear(out) // drop the clicks' strings until the next batch
	chunks := (n + parseChunk - 1) / parseChunk
	done := make([]chan struct{}, chunks)
	for k := range done {
		done[k] = make(chan struct{})
	}
	var (
		next     atomic.Int64 // the first chunk nobody has taken
		wg       sync.WaitGroup
		panicked atomic.Pointer[string]
	)
	parseChunkAt := func(p *click.Parser, k int) {
		defer func() {
			// Parse promises never to panic; if it did, fail the bundle on
			// the DoFn's goroutine, as the inline path would, rather than
			// crash the worker process. Recorded before done[k] closes.
			if r := recover(); r != nil {
				msg := fmt.Sprintf("transforms: parse panicked: %v", r)
				panicked.CompareAndSwap(nil, &msg)
				next.Store(int64(chunks))
			}
			close(done[k])
		}()
		for i, end := k*parseChunk, min((k+1)*parseChunk, n); i < end; i++ {
			parseLine(p, lines[i], &out[i])
		}
	}
	for w := 1; w < min(len(pp.parsers), chunks); w++ {
		wg.Add(1)
		go func(p *click.Parser) {
			defer wg.Done()
			for {
				k := int(next.Add(1)) - 1
				if k >= chunks {
					return
				}
				parseChunkAt(p, k)
			}
		}(&pp.parsers[w])
	}
	// Helpers finish (or skip) their chunks before out is reused, also when
	// each panics.
	defer wg.Wait()
	defer next.Store(int64(chunks))
	for k := 0; k < chunks; k++ {
		if next.CompareAndSwap(int64(k), int64(k+1)) {
			parseChunkAt(&pp.parsers[0], k)
		} else {
			<-done[k] // a helper has it
		}
		if msg := panicked.Load(); msg != nil {
			panic(*msg)
		}
		for i, end := k*parseChunk, min((k+1)*parseChunk, n); i < end; i++ {
			each(i, &out[i])
		}
	}
}
