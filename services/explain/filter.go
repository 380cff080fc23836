package explain

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
)

// filter is a parsed filter id (docs/spec.md §2); the zero value is "no
// filter": the ad's count.
type filter struct {
	id, dim, value string
}

// ErrInvalid marks a request the caller must change (bad ad, range, filter,
// page token). It wraps store.ErrInvalid so HTTP layers answer 400.
var ErrInvalid = fmt.Errorf("explain: %w", store.ErrInvalid)

// parseFilter checks "dimension:value" against the §2 dimensions.
func parseFilter(id string) (filter, error) {
	if id == "" {
		return filter{}, nil
	}
	dim, val, ok := strings.Cut(id, ":")
	if !ok {
		return filter{}, fmt.Errorf("%w: filter %q must be dimension:value with dimension one of %s", ErrInvalid, id, strings.Join(result.Dimensions, ", "))
	}
	known := false
	for _, d := range result.Dimensions {
		known = known || d == dim
	}
	switch {
	case !known:
		return filter{}, fmt.Errorf("%w: filter %q: unknown dimension %q, use one of %s", ErrInvalid, id, dim, strings.Join(result.Dimensions, ", "))
	case val == "":
		return filter{}, fmt.Errorf("%w: filter %q has an empty value", ErrInvalid, id)
	case len(id) > store.MaxIDBytes || !utf8.ValidString(id):
		return filter{}, fmt.Errorf("%w: filter must be valid UTF-8 of at most %d bytes", ErrInvalid, store.MaxIDBytes)
	}
	return filter{id: id, dim: dim, value: val}, nil
}

// matches reports whether a click with these attributes counts in the filter.
func (f filter) matches(c *click.Click) bool {
	switch f.dim {
	case "":
		return true
	case result.DimCountry:
		return c.Country == f.value
	case result.DimDevice:
		return c.Device == f.value
	default:
		return c.AdFormat == f.value
	}
}
