package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/adclick/adclick/runners"
)

// progress counts the input a long command has read and reports it: a line
// on stderr redrawn every second when stderr is a terminal, a log line every
// interval when it is not (a file or a collector, where redrawn lines would
// be noise).
type progress struct {
	what  string // the command, for the log line
	total int64  // input bytes expected; 0 when unknown (standard input)
	now   func() time.Time
	// count, when set, is the number of items done, counted elsewhere (a
	// job's metrics), in unit; the reader's counts are not used then.
	count func() int64
	unit  string // what is counted: "lines" (default) or "clicks"

	lines, bytes atomic.Int64
	readAt       atomic.Int64 // Unix ns when the whole input was read; 0 before
	start        time.Time
}

// inputRead marks the input as wholly read: from then on the figures are
// those of the read (the rate would otherwise sink while the pipeline still
// aggregates, and an ETA of 0 would be shown for work that goes on).
func (p *progress) inputRead() { p.readAt.Store(p.now().UnixNano()) }

func newProgress(what string, total int64, now func() time.Time) *progress {
	return &progress{what: what, total: total, now: now, start: now(), unit: "lines"}
}

// newCountProgress reports count, in unit, with no total: a job whose input
// size is not known in advance (replay, reconcile: clicks read from the
// store, from the job's metrics).
func newCountProgress(what, unit string, count func() int64, now func() time.Time) *progress {
	return &progress{what: what, now: now, start: now(), count: count, unit: unit}
}

// reader counts what passes through r.
func (p *progress) reader(r io.Reader) io.Reader { return &countingReader{r: r, p: p} }

type countingReader struct {
	r io.Reader
	p *progress
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if n > 0 {
		c.p.bytes.Add(int64(n))
		c.p.lines.Add(int64(bytes.Count(b[:n], []byte{'\n'})))
	}
	return n, err
}

// snapshot is the figures at one moment.
type snapshot struct {
	unit                string
	counted             bool // lines is an external count: no bytes
	lines, bytes, total int64
	elapsed             time.Duration
	linesPerSec         float64
	eta                 time.Duration // -1 when unknown
	read                bool          // the whole input was read
}

func (p *progress) snapshot() snapshot {
	now := p.now()
	read := false
	if at := p.readAt.Load(); at != 0 {
		now, read = time.Unix(0, at), true
	}
	s := snapshot{unit: p.unit, lines: p.lines.Load(), bytes: p.bytes.Load(), total: p.total, elapsed: now.Sub(p.start), eta: -1, read: read}
	if p.count != nil {
		s.lines, s.counted = p.count(), true
	}
	if sec := s.elapsed.Seconds(); sec > 0 {
		s.linesPerSec = float64(s.lines) / sec
		// The ETA is by bytes: the total is known in bytes, not lines.
		if s.total > 0 && s.bytes > 0 && !read {
			left := float64(s.total-s.bytes) / (float64(s.bytes) / sec)
			s.eta = max(0, time.Duration(left*float64(time.Second))).Round(time.Second)
		}
	}
	return s
}

// units is what is counted: lines unless said otherwise.
func (s snapshot) units() string {
	if s.unit == "" {
		return "lines"
	}
	return s.unit
}

// text is the terminal line.
func (s snapshot) text() string {
	t := fmt.Sprintf("%s %s read", groupDigits(s.lines), s.units())
	switch {
	case s.counted:
	case s.total > 0:
		t += fmt.Sprintf(" (%.0f%% of %s)", 100*float64(s.bytes)/float64(s.total), byteSize(s.total))
	default:
		t += fmt.Sprintf(" (%s)", byteSize(s.bytes))
	}
	t += fmt.Sprintf(", %s %s/s", groupDigits(int64(s.linesPerSec)), s.units())
	switch {
	case s.read:
		t += fmt.Sprintf(", input read in %v; aggregating", s.elapsed.Round(time.Second))
	case s.eta >= 0:
		t += ", ETA " + s.eta.String()
	}
	return t
}

// log writes the figures as one structured line.
func (s snapshot) log(log *slog.Logger, what, msg string) {
	attrs := []any{"command", what, s.units(), s.lines}
	if !s.counted {
		attrs = append(attrs, "bytes", s.bytes)
	}
	attrs = append(attrs, s.units()+"_per_s", int64(s.linesPerSec), "elapsed", s.elapsed.Round(time.Second).String())
	if s.total > 0 {
		attrs = append(attrs, "total_bytes", s.total, "percent", int(100*s.bytes/s.total))
	}
	if s.eta >= 0 {
		attrs = append(attrs, "eta", s.eta.String())
	}
	if s.read {
		attrs = append(attrs, "input_read", true)
	}
	log.Info(msg, attrs...)
}

// report runs until ctx ends: on a terminal it redraws the line every
// second, otherwise it logs every interval. The returned function stops it
// and writes the final figures (a last line, ended, on a terminal).
func (p *progress) report(ctx context.Context, stderr io.Writer, log *slog.Logger, interval time.Duration) (stop func()) {
	tty := isTerminal(stderr)
	if tty {
		interval = time.Second
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if tty {
					fmt.Fprintf(stderr, "\r\033[K%s: %s", p.what, p.snapshot().text())
				} else {
					p.snapshot().log(log, p.what, "progress")
				}
			}
		}
	}()
	return func() {
		cancel()
		wg.Wait()
		s := p.snapshot()
		if tty {
			fmt.Fprintf(stderr, "\r\033[K%s: %s\n", p.what, s.text())
		} else if s.counted {
			s.log(log, p.what, "done")
		} else {
			s.log(log, p.what, "input read")
		}
	}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// feedFIFO makes a named pipe in dir and copies src into it through p's
// counter once a reader opens it, so that a pipeline that reads files by
// path reads src, counted, without a copy on disk: the command sees how far
// the pipeline has read without any change to the pipeline. done stops the
// feeder (if the pipeline never opened the pipe or stopped reading) and
// returns its error.
func feedFIFO(dir string, src io.Reader, p *progress) (path string, done func() error, err error) {
	path = filepath.Join(dir, "input.fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		return "", nil, fmt.Errorf("making the input pipe: %w", err)
	}
	errc := make(chan error, 1)
	go func() {
		w, err := os.OpenFile(path, os.O_WRONLY, 0) // blocks until the pipeline opens it
		if err != nil {
			errc <- err
			return
		}
		_, err = io.Copy(w, p.reader(src))
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			p.inputRead()
		}
		errc <- err
	}()
	return path, func() error {
		select {
		case err := <-errc:
			return err
		default:
		}
		// Still running: in open (no reader came, or the feeder has not
		// even called it yet) or in a write (the reader is gone). Opening
		// and closing a read end releases either — the open returns, the
		// write fails with a broken pipe — and is repeated until the feeder
		// ends, for a feeder that reaches its open only after one round.
		var err error
	release:
		for {
			r, oerr := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
			select {
			case err = <-errc:
				if oerr == nil {
					r.Close()
				}
				break release
			case <-time.After(20 * time.Millisecond):
			}
			if oerr == nil {
				r.Close()
			}
		}
		if errors.Is(err, syscall.EPIPE) {
			return fmt.Errorf("the pipeline stopped reading its input: %w", err)
		}
		return err
	}, nil
}

// groupDigits writes n with thousands separators.
func groupDigits(n int64) string {
	s := fmt.Sprint(n)
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	var b []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			b = append(b, ',')
		}
		b = append(b, s[i])
	}
	if neg {
		return "-" + string(b)
	}
	return string(b)
}

// byteSize is n in B, KiB, MiB or GiB.
func byteSize(n int64) string {
	const k = 1024
	switch {
	case n < k:
		return fmt.Sprintf("%d B", n)
	case n < k*k:
		return fmt.Sprintf("%.1f KiB", float64(n)/k)
	case n < k*k*k:
		return fmt.Sprintf("%.1f MiB", float64(n)/(k*k))
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(k*k*k))
}

// Beam counter of the raw clicks a store read has read (io/storeio).
const (
	storeioNamespace = "adclick.storeio"
	storeioRawRead   = "raw_clicks_read"
)

// registerProgressInterval registers --progress-interval, as aggregate has it.
func registerProgressInterval(fs *flag.FlagSet) *time.Duration {
	return fs.Duration("progress-interval", 10*time.Second, "when stderr is not a terminal, log clicks read and rate this often (on a terminal a progress line is redrawn every second); 0 turns progress off")
}

// startStoreReadProgress reports the raw clicks read by the jobs run with
// ro (replay, reconcile), from the jobs' own metrics while they run (see
// runners.JobMetrics). No ETA: the number of clicks in a range is not known
// before it is read. stop writes the final figures.
func startStoreReadProgress(ctx context.Context, env *cliEnv, what string, every time.Duration, ro *runners.Options) (stop func()) {
	if every <= 0 {
		return func() {}
	}
	jm := &runners.JobMetrics{Interval: time.Second, Log: env.log}
	ro.Metrics = jm
	p := newCountProgress(what, "clicks", func() int64 { return jm.Snapshot().Counter(storeioNamespace, storeioRawRead) }, time.Now)
	return p.report(ctx, env.stderr, env.log, every)
}
