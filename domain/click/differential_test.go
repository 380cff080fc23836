package click_test

import (
	"testing"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/testing/clickgen"
	"github.com/adclick/adclick/testing/reference"
)

// FuzzMatchesReference: the production parser and the independent reference
// (encoding/json) agree on every input — accept or reject, and on the fields
// that aggregation reads.
func FuzzMatchesReference(f *testing.F) {
	g, err := clickgen.New(clickgen.Config{Seed: 7, DupShare: 0.1, MalformedShare: 0.5})
	if err != nil {
		f.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		f.Add(append([]byte(nil), g.Next().Data...))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var p click.Parser
		c, err := p.Parse(line)
		r, ok := reference.Valid(line)
		if (err == nil) != ok {
			t.Fatalf("parser err=%v, reference ok=%v for %q", err, ok, line)
		}
		if ok && (c.EventID != r.EventID || c.AdID != r.AdID || c.Minute() != r.Minute ||
			c.Country != r.Country || c.Device != r.Device || c.AdFormat != r.Format) {
			t.Fatalf("parser %+v, reference %+v for %q", c, r, line)
		}
	})
}
