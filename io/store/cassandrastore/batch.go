package cassandrastore

import (
	"context"
	"fmt"
	"sync"

	"github.com/gocql/gocql"

	"github.com/adclick/adclick/io/store"
)

// stmt is one CQL statement with its bind values.
type stmt struct {
	cql  string
	args []any
}

// maxBatch bounds the statements of one unlogged batch (all of one partition).
const maxBatch = 100

// writeGroups writes each group (statements of one partition) as unlogged
// batches, WriteConcurrency at a time, each batch retried on failure. The
// first error wins; the remaining groups are not started.
func (s *Store) writeGroups(ctx context.Context, op string, groups [][]stmt) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, s.o.WriteConcurrency)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	fail := func(err error) {
		once.Do(func() { first = err; cancel() })
	}
	for _, g := range groups {
		for i := 0; i < len(g); i += maxBatch {
			part := g[i:min(i+maxBatch, len(g))]
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				break
			}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				err := s.retry(ctx, op, func(ctx context.Context) error {
					if len(part) == 1 {
						return s.s.Query(part[0].cql, part[0].args...).WithContext(ctx).Consistency(s.wcons).Exec()
					}
					b := s.s.NewBatch(gocql.UnloggedBatch).WithContext(ctx)
					b.SetConsistency(s.wcons)
					for _, st := range part {
						b.Query(st.cql, st.args...)
					}
					return s.s.ExecuteBatch(b)
				})
				if err != nil {
					fail(err)
				}
			}()
		}
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return fmt.Errorf("%w: cassandrastore: %s: %v", store.ErrUnavailable, op, ctx.Err())
	}
	return first
}

// values lists a map's groups.
func values(m map[any][]stmt) [][]stmt {
	out := make([][]stmt, 0, len(m))
	for _, g := range m {
		out = append(out, g)
	}
	return out
}
