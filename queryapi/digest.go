package queryapi

import (
	"context"
	"errors"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
)

// Digests: with_digest=true asks for the digest of the set of event ids a
// count counted (result.Digest), so a count and its proof travel together.
// Only stores that keep digests (store.CountDigester; both real backends)
// can answer; Reader stays as it is so that any store serves counts.
var errNoDigests = errors.New("queryapi: the store keeps no digests")

// countDigest is the count with the digest of the ids it counted.
func (s *Server) countDigest(ctx context.Context, adID, filter string, from, to int64) (int64, *result.Digest, error) {
	cd, ok := s.cfg.Store.(store.CountDigester)
	if !ok {
		return 0, nil, errNoDigests
	}
	n, d, err := cd.CountDigest(ctx, adID, filter, from, to)
	return n, &d, err
}
