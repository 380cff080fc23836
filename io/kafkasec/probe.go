package kafkasec

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultProbeTimeout bounds Probe when the caller gives no timeout: long
// enough for a TLS and SCRAM handshake across a slow link, short enough that
// a misconfigured command fails while its operator still watches.
const DefaultProbeTimeout = 15 * time.Second

// ProbeError is one seed broker's failure to answer Probe.
type ProbeError struct {
	Broker string
	Cause  string // what most likely went wrong and what to change, or ""
	Err    error
}

func (e *ProbeError) Error() string {
	if e.Cause == "" {
		return fmt.Sprintf("kafka broker %s: %v", e.Broker, e.Err)
	}
	return fmt.Sprintf("kafka broker %s: %s (%v)", e.Broker, e.Cause, e.Err)
}

func (e *ProbeError) Unwrap() error { return e.Err }

// Probe asks every seed broker once, at the same time, for the cluster's
// metadata, each within timeout (DefaultProbeTimeout if not positive), and
// returns nil as soon as one answers. Otherwise it returns every broker's
// ProbeError, joined. It is one attempt per broker on purpose: franz-go's
// clients retry a refused connection or a dropped one without end (that is
// what lets the commands ride out a broker restart), so without a probe a
// wrong password or certificate would look like a hang.
func Probe(ctx context.Context, brokers []string, sec Security, timeout time.Duration) error {
	if len(brokers) == 0 {
		return errors.New("kafka: no brokers to connect to")
	}
	opts, err := sec.Opts()
	if err != nil {
		return err
	}
	if timeout <= 0 {
		timeout = DefaultProbeTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	errs := make([]error, len(brokers))
	ok := make(chan struct{}, len(brokers))
	var wg sync.WaitGroup
	for i, b := range brokers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = probeOne(ctx, b, sec, timeout, opts); errs[i] == nil {
				ok <- struct{}{}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-ok:
		cancel() // the others need not finish
		<-done
		return nil
	case <-done:
	}
	select {
	case <-ok: // the last one to finish succeeded
		return nil
	default:
	}
	return errors.Join(errs...)
}

// probeOne asks one broker, through a client of its own that knows only that
// broker, so that the error is that broker's.
func probeOne(ctx context.Context, broker string, sec Security, timeout time.Duration, opts []kgo.Opt) error {
	base := []kgo.Opt{kgo.SeedBrokers(broker), kgo.DialTimeout(timeout)}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return &ProbeError{Broker: broker, Err: err}
	}
	defer cl.Close()
	err = cl.Ping(ctx)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil && isContext(err) {
		err = fmt.Errorf("no answer within %v: %w", timeout, err)
	}
	return &ProbeError{Broker: broker, Cause: Cause(err, sec), Err: err}
}

// Unreachable reports whether err is Probe's and no broker answered at all
// (connection refused, no route, no answer in time): unlike a broker that
// answered wrongly, that may be a broker still starting.
func Unreachable(err error) bool {
	if err == nil {
		return false
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		var pe *ProbeError
		if !errors.As(e, &pe) || !unreachable(pe.Err) {
			return false
		}
	}
	return true
}

func unreachable(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) || isContext(err)
}

func isContext(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		strings.Contains(err.Error(), "context deadline exceeded")
}
