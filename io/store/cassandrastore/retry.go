package cassandrastore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/gocql/gocql"

	"github.com/adclick/adclick/io/store"
)

// permanent reports request errors that retrying cannot fix.
func permanent(err error) bool {
	var re gocql.RequestError
	if errors.As(err, &re) {
		switch re.Code() {
		case gocql.ErrCodeSyntax, gocql.ErrCodeInvalid, gocql.ErrCodeUnauthorized, gocql.ErrCodeConfig, gocql.ErrCodeCredentials, gocql.ErrCodeAlreadyExists:
			return true
		}
	}
	return false
}

// ctxDone fails a call whose context has ended, before it sends another
// query: the loops below send one per hour or day of a range, and must stop
// when the caller gives up rather than rely on each query failing fast.
func ctxDone(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: cassandrastore: %w", store.ErrUnavailable, err)
	}
	return nil
}

func (s *Store) readErr(op string, ctx context.Context, err error) error {
	s.m.failures.WithLabelValues(op).Inc()
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("%w: cassandrastore: %s cancelled: %w", store.ErrUnavailable, op, ctx.Err())
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, gocql.ErrTimeoutNoResponse) || ctx.Err() != nil {
		return fmt.Errorf("%w: cassandrastore: %s timed out after %s: %v", store.ErrUnavailable, op, s.o.ReadTimeout, err)
	}
	return fmt.Errorf("%w: cassandrastore: %s: %v", store.ErrUnavailable, op, err)
}

// retry runs fn until it succeeds, fails permanently, or WriteRetries retries
// with exponential backoff have failed.
func (s *Store) retry(ctx context.Context, op string, fn func(context.Context) error) error {
	backoff := s.o.RetryMin
	for attempt := 0; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if permanent(err) {
			s.m.failures.WithLabelValues(op).Inc()
			return fmt.Errorf("cassandrastore: %s: %w", op, err)
		}
		if attempt >= s.o.WriteRetries || ctx.Err() != nil {
			s.m.failures.WithLabelValues(op).Inc()
			return fmt.Errorf("%w: cassandrastore: %s failed after %d attempts: %v", store.ErrUnavailable, op, attempt+1, err)
		}
		s.m.retries.WithLabelValues(op).Inc()
		d := backoff/2 + rand.N(backoff/2+1) // jitter
		select {
		case <-ctx.Done():
			s.m.failures.WithLabelValues(op).Inc()
			return fmt.Errorf("%w: cassandrastore: %s: %v (last error: %v)", store.ErrUnavailable, op, ctx.Err(), err)
		case <-time.After(d):
		}
		backoff = min(backoff*2, s.o.RetryMax)
	}
}
