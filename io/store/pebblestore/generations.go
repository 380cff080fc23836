package pebblestore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/adclick/adclick/io/store"
)

// encodeGen is From, To, Seq, TopTo, Reserved, CommittedAt and Collected
// (0 or 1) as big-endian uint64s. Fields come in the order they were added,
// so an older record (24 bytes: no TopTo; 32: no times) still decodes: its
// top lists end at To, and it has no times (collection counts it as old).
func encodeGen(g store.GenRange) []byte {
	b := make([]byte, 0, genRecordLen)
	for _, v := range [...]int64{g.From, g.To, g.Seq, g.TopTo, g.Reserved, g.CommittedAt, boolI64(g.Collected)} {
		b = binary.BigEndian.AppendUint64(b, uint64(v))
	}
	return b
}

const genRecordLen = 56

func boolI64(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func decodeGen(k, v []byte) (store.GenRange, error) {
	if len(k) != 10 || (len(v) != 24 && len(v) != 32 && len(v) != genRecordLen) {
		return store.GenRange{}, errors.New("bad generation record")
	}
	f := func(i int) int64 {
		if 8*i+8 > len(v) {
			return 0
		}
		return int64(binary.BigEndian.Uint64(v[8*i:]))
	}
	return store.GenRange{Gen: store.Generation(getI64(k[2:])), From: f(0), To: f(1), Seq: f(2), TopTo: f(3),
		Reserved: f(4), CommittedAt: f(5), Collected: f(6) == 1}, nil
}

func (s *Store) loadGenerations() error {
	p := []byte{pMeta, 'g'}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return unavailable("load generations", err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		g, err := decodeGen(it.Key(), it.Value())
		if err != nil {
			return unavailable("load generations", err)
		}
		s.gens[g.Gen] = g
		s.maxGen = max(s.maxGen, g.Gen)
		s.maxSeq = max(s.maxSeq, g.Seq)
		s.maxCommitAt = max(s.maxCommitAt, g.CommittedAt)
	}
	if err := it.Error(); err != nil {
		return unavailable("load generations", err)
	}
	s.publish()
	return nil
}

// putGen persists g (synced) and publishes it; s.mu held.
func (s *Store) putGen(op string, g store.GenRange) error {
	if err := s.apply(func() error { return s.db.Set(genKey(g.Gen), encodeGen(g), pebble.Sync) }); err != nil {
		return unavailable(op, err)
	}
	s.gens[g.Gen] = g
	s.maxGen = max(s.maxGen, g.Gen)
	s.maxSeq = max(s.maxSeq, g.Seq)
	s.maxCommitAt = max(s.maxCommitAt, g.CommittedAt)
	s.publish()
	return nil
}

// publish swaps in the serving map and writable set built from s.gens; s.mu held.
func (s *Store) publish() {
	all := make([]store.GenRange, 0, len(s.gens))
	known := make(map[store.Generation]bool, len(s.gens))
	for g, r := range s.gens {
		all = append(all, r)
		known[g] = r.Seq != store.Abandoned // false: known, but no longer writable
	}
	s.genKnow.Store(&known)
	s.serving.Store(store.NewServing(all))
}

// NewGeneration reserves the next generation for the counts of [from, to)
// and the top lists of the window ends [from, topTo).
func (s *Store) NewGeneration(ctx context.Context, from, to, topTo int64) (store.Generation, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	if err := store.CheckGenRange(from, to, topTo); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g := store.GenRange{Gen: s.maxGen + 1, From: from, To: to, TopTo: topTo, Reserved: time.Now().UnixMicro()}
	if err := s.putGen("new generation", g); err != nil {
		return 0, err
	}
	return g.Gen, nil
}

// CommitGeneration makes gen serve its ranges; committing twice is a no-op.
func (s *Store) CommitGeneration(ctx context.Context, gen store.Generation) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if gen <= store.LiveGeneration {
		return fmt.Errorf("%w: generation %d cannot be committed", store.ErrInvalid, gen)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.gens[gen]
	if !ok {
		return fmt.Errorf("%w: generation %d", store.ErrNotFound, gen)
	}
	if g.Committed() {
		return nil
	}
	if g.Seq == store.Abandoned {
		return fmt.Errorf("%w: generation %d was abandoned: reserved longer ago than garbage collection allows without a commit, and collected", store.ErrNotFound, gen)
	}
	// The commit time never goes back, so commits stay in Seq order in time
	// too, whatever the clock does: garbage collection's grace period
	// counts from it.
	g.Seq = s.maxSeq + 1
	g.CommittedAt = max(time.Now().UnixMicro(), s.maxCommitAt+1)
	return s.putGen("commit generation", g)
}

// CountSegments is store.CountSegmenter: the serving map's runs of [from, to).
func (s *Store) CountSegments(ctx context.Context, from, to int64) ([]store.Segment, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if err := store.CheckRange(from, to); err != nil {
		return nil, err
	}
	return s.serving.Load().Segments(from, to), nil
}
