package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/adclick/adclick/pipelines"
)

// rangeFlags are --from and --to.
type rangeFlags struct{ from, to string }

func (r *rangeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&r.from, "from", "", "start of the range, inclusive: RFC 3339, YYYY-MM-DDTHH:MM (UTC) or epoch seconds; a whole minute (required)")
	fs.StringVar(&r.to, "to", "", "end of the range, exclusive; same forms (required)")
}

func (r *rangeFlags) parse() (time.Time, time.Time, error) {
	if r.from == "" || r.to == "" {
		return time.Time{}, time.Time{}, fmt.Errorf("%w: --from and --to are required", errUsage)
	}
	from, err := pipelines.ParseMinute(r.from)
	if err != nil {
		return from, from, fmt.Errorf("%w: --from: %v", errUsage, err)
	}
	to, err := pipelines.ParseMinute(r.to)
	if err != nil {
		return from, to, fmt.Errorf("%w: --to: %v", errUsage, err)
	}
	if !from.Before(to) {
		return from, to, fmt.Errorf("%w: --from %s must be before --to %s (the range is [from, to))", errUsage, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	return from, to, nil
}
