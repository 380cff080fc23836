// Package clickgen is a generator, test and demo scaffolding: it generates
// realistic click traffic as docs/spec.md §1 JSON lines, for load tests, the
// all-in-one demo and end-to-end correctness tests.
//
// Traffic is Zipf-distributed over ads, skewed over countries, devices and ad
// formats (some clicks lack optional attributes), with event times advancing
// from a start time at a configured event-time rate and jittered a little so
// lines arrive slightly out of order. Configurable shares of the lines are
// duplicates (re-sends of an earlier on-time line), late (behind the current
// event time but within any sane allowed lateness), too late (far behind, so
// every watermark rule drops them) or malformed (one of each docs/spec.md §1 reject
// kinds). Everything is deterministic for a seed, so a test can regenerate a
// stream, and the optional Truth records which lines are which so the expected
// counts can be computed independently of the pipeline under test.
package clickgen

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/adclick/adclick/domain/click"
)

// Kind is what a generated line is meant to be.
type Kind uint8

// Line kinds.
const (
	Normal    Kind = iota // a fresh, valid, on-time click
	Duplicate             // an exact re-send of an earlier Normal line (same event_id)
	Late                  // a fresh valid click behind the current event time by LateMin..LateMax
	TooLate               // a fresh valid click behind by TooLateMin..TooLateMax
	Malformed             // a line click.Parser rejects
	numKinds
)

var kindNames = [...]string{"normal", "duplicate", "late", "too_late", "malformed"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Config says what traffic to generate. The zero value of a field means its
// default (see Defaults), except the shares, whose zero means "none".
type Config struct {
	Seed      uint64
	Ads       int           // distinct ads; default 1000
	ZipfS     float64       // Zipf exponent over ads, > 1; default 1.1
	Uniform   bool          // every ad equally likely instead of Zipf (the worst case for cardinality)
	Start     time.Time     // event time of the first line; default 2026-01-01T00:00:00Z
	EventRate float64       // lines per second of event time; default 1000
	Jitter    time.Duration // event times lag the clock by up to this (out of order); default 2s, < 1 min

	// Shares of lines, each in [0,1], sum ≤ 1; the rest are Normal.
	DupShare, LateShare, TooLateShare, MalformedShare float64

	LateMin, LateMax       time.Duration // default 1 min .. 4 min
	TooLateMin, TooLateMax time.Duration // default 15 min .. 60 min

	// IDPrefix starts every event_id; default derived from Seed, so two streams
	// with different seeds never share an event_id.
	IDPrefix string

	// Truth, when set, records which lines are which (memory grows with the
	// number of non-normal lines: use it on bounded streams).
	Truth bool
}

// Defaults.
const (
	DefaultAds       = 1000
	DefaultZipfS     = 1.1
	DefaultEventRate = 1000
	DefaultJitter    = 2 * time.Second
	DefaultLateMin   = 1 * time.Minute
	DefaultLateMax   = 4 * time.Minute
	DefaultTooLateMn = 15 * time.Minute
	DefaultTooLateMx = 60 * time.Minute
	// MaxAds bounds the ad population (the Zipf sampler's table is O(1), but
	// the truth and tests assume ads fit comfortably in memory).
	MaxAds = 100_000_000
	// dupRing is how many recent Normal lines a Duplicate may re-send: recent
	// enough that any dedup horizon covers them, bounded so memory is too.
	dupRing = 4096
)

// DefaultStart is the default event time of the first line.
var DefaultStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func (c *Config) withDefaults() Config {
	d := *c
	if d.Ads == 0 {
		d.Ads = DefaultAds
	}
	if d.ZipfS == 0 {
		d.ZipfS = DefaultZipfS
	}
	if d.Start.IsZero() {
		d.Start = DefaultStart
	}
	if d.EventRate == 0 {
		d.EventRate = DefaultEventRate
	}
	if d.Jitter == 0 {
		d.Jitter = DefaultJitter
	}
	if d.LateMin == 0 && d.LateMax == 0 {
		d.LateMin, d.LateMax = DefaultLateMin, DefaultLateMax
	}
	if d.TooLateMin == 0 && d.TooLateMax == 0 {
		d.TooLateMin, d.TooLateMax = DefaultTooLateMn, DefaultTooLateMx
	}
	if d.IDPrefix == "" {
		h := fnv.New64a()
		var b [8]byte
		for i := range b {
			b[i] = byte(d.Seed >> (8 * i))
		}
		h.Write(b[:])
		d.IDPrefix = fmt.Sprintf("%012x", h.Sum64()&0xffffffffffff)
	}
	return d
}

// Validate reports the first thing wrong with c (after defaults).
func (c *Config) Validate() error {
	d := c.withDefaults()
	return d.validate()
}

func (d *Config) validate() error {
	switch {
	case d.Ads < 1 || d.Ads > MaxAds:
		return fmt.Errorf("ads must be in 1..%d, got %d", MaxAds, d.Ads)
	case !(d.ZipfS > 1) || math.IsInf(d.ZipfS, 0):
		return fmt.Errorf("zipf exponent must be a finite number > 1, got %v", d.ZipfS)
	case !(d.EventRate >= 0.001 && d.EventRate <= 1e9):
		return fmt.Errorf("event rate must be in 0.001..1e9 lines per event-time second, got %v", d.EventRate)
	case d.Jitter < 0 || d.Jitter >= time.Minute:
		return fmt.Errorf("jitter must be in [0, 1m), got %v", d.Jitter)
	case d.LateMin <= 0 || d.LateMax < d.LateMin:
		return fmt.Errorf("late range must satisfy 0 < min ≤ max, got %v..%v", d.LateMin, d.LateMax)
	case d.TooLateMin <= d.LateMax || d.TooLateMax < d.TooLateMin:
		return fmt.Errorf("too-late range must satisfy late max < min ≤ max, got %v..%v (late max %v)", d.TooLateMin, d.TooLateMax, d.LateMax)
	case len(d.IDPrefix) > 64:
		return fmt.Errorf("id prefix longer than 64 bytes")
	}
	if d.Start.Add(-d.TooLateMax).Before(click.MinTime) || !d.Start.Add(24*365*time.Hour).Before(click.MaxTime) {
		return fmt.Errorf("start %s too close to the valid event-time range %s..%s",
			d.Start.UTC().Format(time.RFC3339), click.MinTime.Format(time.RFC3339), click.MaxTime.Format(time.RFC3339))
	}
	sum := 0.0
	for _, s := range []struct {
		name string
		v    float64
	}{{"duplicate", d.DupShare}, {"late", d.LateShare}, {"too-late", d.TooLateShare}, {"malformed", d.MalformedShare}} {
		if !(s.v >= 0 && s.v <= 1) {
			return fmt.Errorf("%s share must be in [0,1], got %v", s.name, s.v)
		}
		sum += s.v
	}
	if sum > 1+1e-9 {
		return fmt.Errorf("shares add up to %v, more than 1", sum)
	}
	return nil
}

// Line is one generated line. Its byte slices belong to the Generator and are
// valid only until the next call to Next.
type Line struct {
	Kind Kind
	// Data is the line without its newline.
	Data []byte
	// AdID is the ad of a valid line (the Kafka key), nil for a malformed one.
	AdID []byte
	// EventID is the event_id of a valid line, nil for a malformed one.
	EventID []byte
	// Time is the event time of a valid line in Unix ms, 0 for a malformed one.
	Time int64
	// Reason is the reject reason click.Parser gives a Malformed line.
	Reason click.Reason
	// Index is the 0-based line number in the stream.
	Index int64
}

// rec is a valid click in compact form: Normal lines are kept in a ring as
// recs so a Duplicate can re-render them byte for byte without allocating.
type rec struct {
	id      uint64
	t       int64 // ms
	ad      uint32
	user    uint32
	ip      uint32
	country int8 // index into countries, -1 = absent
	device  int8
	format  int8
	msForm  bool // timestamp as integer epoch ms rather than RFC 3339
	noUser  bool
	noIP    bool
}

type weighted struct {
	vals []string
	cum  []float64 // cumulative probability of vals; the remainder is "absent"
}

func newWeighted(pairs ...any) weighted {
	var w weighted
	acc := 0.0
	for i := 0; i < len(pairs); i += 2 {
		w.vals = append(w.vals, pairs[i].(string))
		acc += pairs[i+1].(float64)
		w.cum = append(w.cum, acc)
	}
	return w
}

func (w *weighted) pick(r *rand.Rand) int8 {
	u := r.Float64()
	for i, c := range w.cum {
		if u < c {
			return int8(i)
		}
	}
	return -1
}

// The attribute distributions: skewed like real traffic, with a few percent
// of clicks lacking the attribute (docs/spec.md §2: such clicks count only unfiltered).
var (
	Countries = newWeighted("US", 0.38, "IN", 0.12, "GB", 0.08, "DE", 0.07, "BR", 0.06, "JP", 0.05,
		"FR", 0.05, "CA", 0.04, "MX", 0.03, "ID", 0.03, "AU", 0.02, "ES", 0.02, "IT", 0.02) // 3% absent
	Devices = newWeighted("mobile", 0.62, "desktop", 0.28, "tablet", 0.06, "tv", 0.02)                       // 2% absent
	Formats = newWeighted("banner", 0.45, "video", 0.25, "native", 0.15, "interstitial", 0.1, "audio", 0.01) // 4% absent
)

// Generator produces a deterministic stream of lines. Not safe for concurrent use.
type Generator struct {
	cfg   Config
	r     *rand.Rand
	zipf  *rand.Zipf
	cum   [numKinds]float64 // cumulative share thresholds, in kind order Malformed, Duplicate, TooLate, Late
	next  uint64            // next event counter
	index int64             // next line index
	base  float64           // current event time, ms (fractional so slow rates advance)
	step  float64           // ms of event time per line
	warm  int64             // event time (ms) before which no late/too-late lines are made
	ring  []rec
	ringN int
	buf   []byte
	pad   string // filler for over-long lines, made once
	truth *Truth
}

// New returns a generator for cfg, or an error saying what is wrong with it.
func New(cfg Config) (*Generator, error) {
	d := cfg.withDefaults()
	if err := d.validate(); err != nil {
		return nil, fmt.Errorf("clickgen: %w", err)
	}
	r := rand.New(rand.NewPCG(d.Seed, d.Seed^0x9e3779b97f4a7c15))
	g := &Generator{
		cfg:  d,
		r:    r,
		zipf: rand.NewZipf(r, d.ZipfS, 1, uint64(d.Ads-1)),
		base: float64(d.Start.UnixMilli()),
		step: 1000 / d.EventRate,
		ring: make([]rec, 0, dupRing),
		buf:  make([]byte, 0, 512),
	}
	// Late lines must lie behind an event time the pipeline has surely seen:
	// wait until the stream has advanced past its own jitter a few times over.
	g.warm = d.Start.UnixMilli() + 3*d.Jitter.Milliseconds() + 1000
	g.cum[0] = d.MalformedShare
	g.cum[1] = g.cum[0] + d.DupShare
	g.cum[2] = g.cum[1] + d.TooLateShare
	g.cum[3] = g.cum[2] + d.LateShare
	if d.Truth {
		g.truth = &Truth{Seed: d.Seed, IDPrefix: d.IDPrefix}
	}
	return g, nil
}

// Lines generates n lines at once (each its own copy) with the truth about
// them: what tests compare a pipeline's results against.
func Lines(n int, cfg Config) ([][]byte, *Truth, error) {
	cfg.Truth = true
	g, err := New(cfg)
	if err != nil {
		return nil, nil, err
	}
	out := make([][]byte, n)
	for i := range out {
		out[i] = append([]byte(nil), g.Next().Data...)
	}
	return out, g.Truth(), nil
}

// Config returns the configuration in effect, defaults filled in.
func (g *Generator) Config() Config { return g.cfg }

// Truth returns what the generator has recorded so far, or nil without Config.Truth.
func (g *Generator) Truth() *Truth { return g.truth }

// EventTime is the current event time (the clock the next on-time line follows).
func (g *Generator) EventTime() time.Time { return time.UnixMilli(int64(g.base)).UTC() }

// Next generates the next line.
func (g *Generator) Next() Line {
	u := g.r.Float64()
	now := int64(g.base)
	var l Line
	switch {
	case u < g.cum[0]:
		l = g.malformed()
	case u < g.cum[1] && g.ringN > 0:
		l = g.duplicate()
	case u < g.cum[2] && u >= g.cum[1] && now >= g.warm:
		l = g.fresh(TooLate, now-g.between(g.cfg.TooLateMin, g.cfg.TooLateMax))
	case u < g.cum[3] && u >= g.cum[2] && now >= g.warm:
		l = g.fresh(Late, now-g.between(g.cfg.LateMin, g.cfg.LateMax))
	default:
		// Also the fallback for the shares that cannot be served yet (nothing to
		// duplicate, no event time to be late behind): the truth says what was made.
		t := now
		if j := g.cfg.Jitter.Milliseconds(); j > 0 {
			t -= g.r.Int64N(j + 1)
		}
		l = g.fresh(Normal, t)
	}
	l.Index = g.index
	g.index++
	g.base += g.step
	if g.truth != nil {
		g.truth.record(&l)
	}
	return l
}

func (g *Generator) between(lo, hi time.Duration) int64 {
	a, b := lo.Milliseconds(), hi.Milliseconds()
	return a + g.r.Int64N(b-a+1)
}

func (g *Generator) pickAd() uint32 {
	if g.cfg.Uniform {
		return uint32(g.r.IntN(g.cfg.Ads))
	}
	return uint32(g.zipf.Uint64())
}

func (g *Generator) newRec(t int64) rec {
	rc := rec{
		id:      g.next,
		t:       t,
		ad:      g.pickAd(),
		country: Countries.pick(g.r),
		device:  Devices.pick(g.r),
		format:  Formats.pick(g.r),
		msForm:  g.r.IntN(2) == 0,
		user:    uint32(g.r.IntN(1_000_000)),
		ip:      g.r.Uint32(),
	}
	v := g.r.IntN(100)
	rc.noUser = v < 5
	rc.noIP = v >= 95
	g.next++
	return rc
}

func (g *Generator) fresh(k Kind, t int64) Line {
	rc := g.newRec(t)
	if k == Normal {
		if len(g.ring) < dupRing {
			g.ring = append(g.ring, rc)
		} else {
			g.ring[g.ringN%dupRing] = rc
		}
		g.ringN++
	}
	return g.render(k, &rc)
}

func (g *Generator) duplicate() Line {
	n := len(g.ring)
	rc := g.ring[g.r.IntN(n)]
	// The same instant in the other timestamp form is still the same click.
	if g.r.IntN(10) < 3 {
		rc.msForm = !rc.msForm
	}
	return g.render(Duplicate, &rc)
}

// render writes rc as a JSON line into g.buf. It is a pure function of rc, so
// a re-send is byte-identical to the original.
func (g *Generator) render(k Kind, rc *rec) Line {
	b := g.buf[:0]
	b = append(b, `{"event_id":"`...)
	idStart := len(b)
	b = g.appendID(b, rc.id)
	idEnd := len(b)
	b = append(b, `","ad_id":"`...)
	adStart := len(b)
	b = appendAd(b, rc.ad)
	adEnd := len(b)
	b = append(b, `","timestamp":`...)
	b = appendTime(b, rc.t, rc.msForm)
	if !rc.noUser {
		b = append(b, `,"user_id":"u`...)
		b = strconv.AppendUint(b, uint64(rc.user), 10)
		b = append(b, '"')
	}
	if !rc.noIP {
		b = append(b, `,"ip":"`...)
		b = strconv.AppendUint(b, uint64(rc.ip>>24), 10)
		b = append(b, '.')
		b = strconv.AppendUint(b, uint64(rc.ip>>16&0xff), 10)
		b = append(b, '.')
		b = strconv.AppendUint(b, uint64(rc.ip>>8&0xff), 10)
		b = append(b, '.')
		b = strconv.AppendUint(b, uint64(rc.ip&0xff), 10)
		b = append(b, '"')
	}
	b = appendAttr(b, "country", &Countries, rc.country)
	b = appendAttr(b, "device", &Devices, rc.device)
	b = appendAttr(b, "ad_format", &Formats, rc.format)
	if rc.id%16 == 5 {
		// An unknown field now and then: docs/spec.md §1 says readers ignore it.
		b = append(b, `,"campaign_id":"c`...)
		b = strconv.AppendUint(b, uint64(rc.ad%97), 10)
		b = append(b, '"')
	}
	b = append(b, '}')
	g.buf = b
	return Line{Kind: k, Data: b, EventID: b[idStart:idEnd], AdID: b[adStart:adEnd], Time: rc.t}
}

func (g *Generator) appendID(b []byte, id uint64) []byte {
	b = append(b, g.cfg.IDPrefix...)
	b = append(b, '-')
	return strconv.AppendUint(b, id, 36)
}

// AdID is the ad_id of the ad with Zipf rank r (0 is the most clicked).
func AdID(r int) string { return string(appendAd(nil, uint32(r))) }

func appendAd(b []byte, ad uint32) []byte {
	b = append(b, "ad-"...)
	var d [10]byte
	s := strconv.AppendUint(d[:0], uint64(ad), 10)
	for i := len(s); i < 6; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

func appendTime(b []byte, ms int64, msForm bool) []byte {
	if msForm {
		return strconv.AppendInt(b, ms, 10)
	}
	b = append(b, '"')
	// .999 drops trailing zeros (and the dot for whole seconds): both forms are RFC 3339.
	b = time.UnixMilli(ms).UTC().AppendFormat(b, "2006-01-02T15:04:05.999Z07:00")
	return append(b, '"')
}

func appendAttr(b []byte, name string, w *weighted, i int8) []byte {
	if i < 0 {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, `":"`...)
	b = append(b, w.vals[i]...)
	return append(b, '"')
}
