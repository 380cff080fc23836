package logwatch

import (
	"context"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adclick/adclick/domain/click"
)

// full reports whether the in-flight bounds are reached: reading pauses
// until acknowledgements come back.
func (w *Watcher) full() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.inflight >= w.cfg.MaxInFlight || w.inflightBytes >= w.cfg.MaxInFlightBytes
}

// publish sends f's current line, which ends (newline included) at file
// offset end.
func (w *Watcher) publish(ctx context.Context, f *tfile, end int64) {
	line := f.line
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	cut := f.cut
	f.line, f.cut = f.line[:0], false
	w.m.linesRead.Inc()
	w.mu.Lock()
	q := f.q
	seq := q.push(end)
	if len(line) == 0 {
		// A blank line carries no click: acknowledge it ourselves.
		q.ack(seq)
		w.mu.Unlock()
		w.m.blank.Inc()
		return
	}
	if w.inflight == 0 {
		w.lastAck = time.Now() // the stall clock starts with the first unacknowledged record
	}
	w.inflight++
	w.inflightBytes += int64(len(line))
	w.mu.Unlock()
	if cut {
		w.m.cut.Inc()
	}
	value, now := append([]byte(nil), line...), time.Now()
	var r *kgo.Record
	if c, err := w.parser.Parse(line); err == nil {
		r = Record(value, &c, w.key(&c), now)
	} else {
		w.m.malformed.Inc()
		r = Record(value, nil, nil, now)
	}
	w.produce(r, q, seq)
}

// key is the Kafka key: the ad_id, salted for hot ads. The bucket comes from
// the event_id, so a re-sent click lands in the same partition as before.
func (w *Watcher) key(c *click.Click) []byte {
	if !w.hot[c.AdID] {
		return []byte(c.AdID)
	}
	h := fnv.New32a()
	h.Write([]byte(c.EventID))
	k := make([]byte, 0, len(c.AdID)+5)
	k = append(k, c.AdID...)
	k = append(k, '#')
	return strconv.AppendUint(k, uint64(h.Sum32()%uint32(w.cfg.SaltBuckets)), 10)
}

// produce sends r; its acknowledgement moves q. Failed records go to the
// retry list (promises must not block, so they never produce themselves).
// The produce context is not the run context: records already handed over
// keep going during shutdown.
func (w *Watcher) produce(r *kgo.Record, q *ackq, seq int64) {
	size := int64(len(r.Value))
	w.cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
		w.mu.Lock()
		if err != nil {
			w.m.publishErrors.Inc()
			// A fresh record (the client owns the failed one), with the
			// headers: they carry the event time, or its absence.
			w.retry = append(w.retry, retryRec{r: &kgo.Record{Key: r.Key, Value: r.Value, Headers: r.Headers, Timestamp: time.Now()}, q: q, seq: seq, err: err})
			w.mu.Unlock()
			return
		}
		w.inflight--
		w.inflightBytes -= size
		q.ack(seq)
		w.lastAck = time.Now()
		w.mu.Unlock()
		w.m.published.Inc()
		select {
		case w.ackCh <- struct{}{}:
		default:
		}
	})
}

type retryRec struct {
	r   *kgo.Record
	q   *ackq
	seq int64
	err error
}

// resend produces failed records again, after a pause that grows while
// failures keep coming.
func (w *Watcher) resend(ctx context.Context) {
	w.mu.Lock()
	rs := w.retry
	w.retry = nil
	w.mu.Unlock()
	if len(rs) == 0 {
		return
	}
	w.log.Warn("publishing failed; retrying", "records", len(rs), "err", rs[0].err)
	select {
	case <-ctx.Done():
	case <-time.After(time.Second):
	}
	for _, rr := range rs {
		w.produce(rr.r, rr.q, rr.seq)
	}
}
