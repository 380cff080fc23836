package dbwriter

import (
	"context"
	"fmt"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
)

// writeTooLate stores the streaming job's too-late records
// (result.TooLate) of a batch in the store's TooLateStore. They are not
// aggregates: Merge would refuse them (store.CheckRecord), and merging two
// of one key would keep one and lose the other's hashes, as the records of
// an (ad, minute) add up. AddTooLate is a set union, so a re-delivered
// batch writes nothing new. A store without a TooLateStore skips them with
// a warning: services/explain then infers what it can from the digests.
func (w *writer) writeTooLate(ctx context.Context, late []result.TooLate) error {
	if len(late) == 0 {
		return nil
	}
	ts, ok := w.st.(store.TooLateStore)
	if !ok {
		w.m.rejected.Add(float64(len(late)))
		if !w.warnedTooLate {
			w.warnedTooLate = true
			w.log.Warn("the store keeps no too-late records; skipping them", "store", fmt.Sprintf("%T", w.st))
		}
		return nil
	}
	return writeAll(ctx, w, late, func(ctx context.Context, b []result.TooLate) error {
		return ts.AddTooLate(ctx, w.cfg.Generation, b)
	})
}
