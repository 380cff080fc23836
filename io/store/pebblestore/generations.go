package pebblestore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble"

	"github.com/adclick/adclick/io/store"
)

// encodeGen is From, To, Seq, TopTo as big-endian uint64s. TopTo comes last
// so a record written before it existed (24 bytes) still decodes: its top
// lists end at To.
func encodeGen(g store.GenRange) []byte {
	b := make([]byte, 0, 32)
	b = binary.BigEndian.AppendUint64(b, uint64(g.From))
	b = binary.BigEndian.AppendUint64(b, uint64(g.To))
	b = binary.BigEndian.AppendUint64(b, uint64(g.Seq))
	return binary.BigEndian.AppendUint64(b, uint64(g.TopTo))
}

func (s *Store) loadGenerations() error {
	p := []byte{pMeta, 'g'}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return unavailable("load generations", err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		k, v := it.Key(), it.Value()
		if len(k) != 10 || (len(v) != 24 && len(v) != 32) {
			return unavailable("load generations", errors.New("bad generation record"))
		}
		g := store.GenRange{
			Gen:  store.Generation(getI64(k[2:])),
			From: int64(binary.BigEndian.Uint64(v)),
			To:   int64(binary.BigEndian.Uint64(v[8:])),
			Seq:  int64(binary.BigEndian.Uint64(v[16:])),
		}
		if len(v) == 32 {
			g.TopTo = int64(binary.BigEndian.Uint64(v[24:]))
		}
		s.gens[g.Gen] = g
		s.maxGen = max(s.maxGen, g.Gen)
		s.maxSeq = max(s.maxSeq, g.Seq)
	}
	if err := it.Error(); err != nil {
		return unavailable("load generations", err)
	}
	s.publish()
	return nil
}

// publish swaps in the serving map and writable set built from s.gens; s.mu held.
func (s *Store) publish() {
	all := make([]store.GenRange, 0, len(s.gens))
	known := make(map[store.Generation]bool, len(s.gens))
	for g, r := range s.gens {
		all = append(all, r)
		known[g] = true
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
	g := store.GenRange{Gen: s.maxGen + 1, From: from, To: to, TopTo: topTo}
	if err := s.db.Set(genKey(g.Gen), encodeGen(g), pebble.Sync); err != nil {
		return 0, unavailable("new generation", err)
	}
	s.maxGen = g.Gen
	s.gens[g.Gen] = g
	s.publish()
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
	g.Seq = s.maxSeq + 1
	if err := s.db.Set(genKey(gen), encodeGen(g), pebble.Sync); err != nil {
		return unavailable("commit generation", err)
	}
	s.maxSeq = g.Seq
	s.gens[gen] = g
	s.publish()
	return nil
}
