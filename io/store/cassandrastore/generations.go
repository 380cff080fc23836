package cassandrastore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/adclick/adclick/io/store"
)

// loadGenerations reads the generations partition and publishes it. A
// keyspace not migrated since collected_at was added still loads (nothing
// reads as collected), so serving goes on until adclick migrate runs.
func (s *Store) loadGenerations(ctx context.Context) (*servingState, error) {
	ctx, cancel := context.WithTimeout(ctx, s.o.ReadTimeout)
	defer cancel()
	old := s.noCollectedAt.Load()
	cols := "gen, from_minute, to_minute, seq, top_to_minute, WRITETIME(from_minute), collected_at"
	if old {
		cols = strings.TrimSuffix(cols, ", collected_at")
	}
	it := s.s.Query("SELECT " + cols + " FROM generations WHERE p = 0").WithContext(ctx).Consistency(s.rcons).Iter()
	st := &servingState{gens: map[store.Generation]store.GenRange{}, at: time.Now()}
	var g store.GenRange
	var gen, collectedAt int64
	dest := []any{&gen, &g.From, &g.To, &g.Seq, &g.TopTo, &g.Reserved, &collectedAt}
	if old {
		dest = dest[:6]
	}
	// A null top_to_minute (a generation reserved before the column existed)
	// scans as 0, which GenRange reads as to_minute; a null collected_at as
	// 0, not collected.
	for it.Scan(dest...) {
		g.Gen = store.Generation(gen)
		g.Collected = collectedAt != 0
		g.CommittedAt = 0
		if g.Seq > 0 { // the commit sequence is the commit's clock reading
			g.CommittedAt = g.Seq
		}
		st.gens[g.Gen] = g
		st.maxSq = max(st.maxSq, g.Seq)
	}
	if err := it.Close(); err != nil {
		if !old && missingColumn(err, "collected_at") {
			s.noCollectedAt.Store(true)
			return s.loadGenerations(ctx)
		}
		return nil, s.readErr("load_generations", ctx, err)
	}
	all := make([]store.GenRange, 0, len(st.gens))
	for _, r := range st.gens {
		all = append(all, r)
	}
	st.sv = store.NewServing(all)
	s.serving.Store(st)
	return st, nil
}

// servingNow returns the serving map, refreshed if older than the cache TTL.
func (s *Store) servingNow(ctx context.Context) (*store.Serving, error) {
	if err := ctxDone(ctx); err != nil {
		return nil, err
	}
	st := s.serving.Load()
	if time.Since(st.at) < s.o.GenerationCacheTTL {
		return st.sv, nil
	}
	s.genMu.Lock()
	defer s.genMu.Unlock()
	if st = s.serving.Load(); time.Since(st.at) < s.o.GenerationCacheTTL {
		return st.sv, nil
	}
	st, err := s.loadGenerations(ctx)
	if err != nil {
		return nil, err
	}
	return st.sv, nil
}

// writable checks that gen may be written (live, or reserved by any process).
func (s *Store) writable(ctx context.Context, gen store.Generation) error {
	if gen == store.LiveGeneration {
		return nil
	}
	if gen > 0 {
		g, ok := s.serving.Load().gens[gen]
		if !ok {
			s.genMu.Lock()
			st, err := s.loadGenerations(ctx)
			s.genMu.Unlock()
			if err != nil {
				return err
			}
			g, ok = st.gens[gen]
		}
		if ok && g.Seq == store.Abandoned {
			return fmt.Errorf("%w: generation %d was abandoned and collected", store.ErrInvalid, gen)
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("%w: generation %d was not reserved with NewGeneration", store.ErrInvalid, gen)
}

// NewGeneration reserves the next free generation number with a lightweight
// transaction (so concurrent recalculations in different processes get
// different numbers).
func (s *Store) NewGeneration(ctx context.Context, from, to, topTo int64) (store.Generation, error) {
	if err := store.CheckGenRange(from, to, topTo); err != nil {
		return 0, err
	}
	s.genMu.Lock()
	defer s.genMu.Unlock()
	for attempt := 0; attempt < 20; attempt++ {
		st, err := s.loadGenerations(ctx)
		if err != nil {
			return 0, err
		}
		var next store.Generation = 1
		for g := range st.gens {
			next = max(next, g+1)
		}
		applied, err := s.s.Query("INSERT INTO generations (p, gen, from_minute, to_minute, top_to_minute, seq) VALUES (0, ?, ?, ?, ?, 0) IF NOT EXISTS",
			int64(next), from, to, topTo).WithContext(ctx).Consistency(s.wcons).MapScanCAS(map[string]any{})
		if err != nil {
			s.m.failures.WithLabelValues("new_generation").Inc()
			return 0, fmt.Errorf("%w: cassandrastore: new generation: %v", store.ErrUnavailable, err)
		}
		if applied {
			s.publishLocked(st, store.GenRange{Gen: next, From: from, To: to, TopTo: topTo, Reserved: time.Now().UnixMicro()})
			return next, nil
		}
	}
	return 0, fmt.Errorf("%w: cassandrastore: new generation: too much contention", store.ErrUnavailable)
}

// publishLocked publishes st with g added or replaced; genMu held.
func (s *Store) publishLocked(st *servingState, g store.GenRange) {
	n := &servingState{gens: make(map[store.Generation]store.GenRange, len(st.gens)+1), at: time.Now(), maxSq: max(st.maxSq, g.Seq)}
	all := make([]store.GenRange, 0, len(st.gens)+1)
	for k, v := range st.gens {
		n.gens[k] = v
	}
	n.gens[g.Gen] = g
	for _, v := range n.gens {
		all = append(all, v)
	}
	n.sv = store.NewServing(all)
	s.serving.Store(n)
}

// CommitGeneration switches reads of gen's ranges to it. The commit sequence
// is a microsecond clock reading above every known commit, set with a
// lightweight transaction only if the generation is not committed yet.
func (s *Store) CommitGeneration(ctx context.Context, gen store.Generation) error {
	if gen <= store.LiveGeneration {
		return fmt.Errorf("%w: generation %d cannot be committed", store.ErrInvalid, gen)
	}
	s.genMu.Lock()
	defer s.genMu.Unlock()
	st, err := s.loadGenerations(ctx)
	if err != nil {
		return err
	}
	g, ok := st.gens[gen]
	if !ok {
		return fmt.Errorf("%w: generation %d", store.ErrNotFound, gen)
	}
	if g.Committed() {
		return nil
	}
	if g.Seq == store.Abandoned {
		return errAbandoned(gen)
	}
	g.Seq = max(time.Now().UnixMicro(), st.maxSq+1)
	cur := map[string]any{}
	applied, err := s.s.Query("UPDATE generations SET seq = ? WHERE p = 0 AND gen = ? IF seq = 0", g.Seq, int64(gen)).
		WithContext(ctx).Consistency(s.wcons).MapScanCAS(cur)
	if err != nil {
		s.m.failures.WithLabelValues("commit_generation").Inc()
		return fmt.Errorf("%w: cassandrastore: commit generation %d: %v", store.ErrUnavailable, gen, err)
	}
	if !applied { // another process committed it first: take its sequence
		seq, _ := cur["seq"].(int64)
		if seq == store.Abandoned { // or a collection abandoned it
			return errAbandoned(gen)
		}
		g.Seq = seq
	}
	g.CommittedAt = g.Seq
	s.publishLocked(st, g)
	return nil
}

func errAbandoned(gen store.Generation) error {
	return fmt.Errorf("%w: generation %d was abandoned: reserved longer ago than garbage collection allows without a commit, and collected", store.ErrNotFound, gen)
}

// CountSegments is store.CountSegmenter: the serving map's runs of [from, to),
// as fresh as the generation cache (GenerationCacheTTL).
func (s *Store) CountSegments(ctx context.Context, from, to int64) ([]store.Segment, error) {
	if err := store.CheckRange(from, to); err != nil {
		return nil, err
	}
	sv, err := s.servingNow(ctx)
	if err != nil {
		return nil, err
	}
	return sv.Segments(from, to), nil
}
