package store

import (
	"fmt"

	"github.com/adclick/adclick/domain/result"
)

// CheckTooLate validates one too-late record for TooLateStore.AddTooLate.
func CheckTooLate(gen Generation, t *result.TooLate) error {
	if gen < 0 {
		return fmt.Errorf("%w: generation %d", ErrInvalid, gen)
	}
	if err := CheckID("ad id", t.AdID); err != nil {
		return err
	}
	if t.Minute%60 != 0 {
		return fmt.Errorf("%w: too-late minute %d is not minute-aligned", ErrInvalid, t.Minute)
	}
	if len(t.Hashes) == 0 || len(t.Hashes) > result.MaxTooLateHashes {
		return fmt.Errorf("%w: a too-late record holds %d hashes; want 1 to %d", ErrInvalid, len(t.Hashes), result.MaxTooLateHashes)
	}
	for i, h := range t.Hashes {
		if !h.Known {
			return fmt.Errorf("%w: too-late hash %d is unknown", ErrInvalid, i)
		}
	}
	return nil
}

// CheckTooLateQuery validates the arguments of TooLateStore.TooLate.
func CheckTooLateQuery(gen Generation, adID string, minute int64) error {
	return CheckTooLate(gen, &result.TooLate{AdID: adID, Minute: minute, Hashes: []result.Digest{{Known: true}}})
}
