// Package metrics defines the Prometheus families about the pipeline as a
// whole that no component package owns: the streaming job's counters (read
// from the running job's Beam metrics), the Kafka consumer groups' lag and
// the end-to-end freshness of the stored results. One definition keeps the
// names, labels and help texts the same in every process that exports them
// (stream, dbwriter, serve, the all-in-one), so that the Grafana dashboard
// and the alert rules in deploy/ work on any deployment; docs/metrics.md
// lists every family.
//
// Every family is a collector that reads its values when scraped, never a
// package variable: a process builds the collectors it needs and registers
// them in its own registry.
//
// Names follow one scheme: namespace adclick, the unit as suffix (_seconds,
// _records, _bytes), _total on counters.
package metrics

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/adclick/adclick/domain/click"
)

// Family names that other code reads by name: the dashboard page sums them
// from /metrics.
const (
	NameClicksIn   = "adclick_clicks_in_total"
	NameRejected   = "adclick_clicks_rejected_total"
	NameDuplicates = "adclick_clicks_duplicate_total"
	NameTooLate    = "adclick_clicks_too_late_total"
)

// StreamValues are the streaming job's figures at one moment, as its Beam
// metrics report them (see cmd/adclick for the mapping from Beam names).
type StreamValues struct {
	// At is when the job's metrics were read; zero before the first read,
	// when the collector exports nothing (an absent series says "unknown";
	// a zero would claim that nothing was read).
	At time.Time
	// Running reports whether the job is in a non-terminal state.
	Running bool

	ClicksIn, Counted, Duplicates, TooLate int64
	Rejected                               map[click.Reason]int64
	// ResultsWritten counts the result records handed to the results
	// topic's writers (accumulating panes each count).
	ResultsWritten int64

	RecordsRead, Commits, CommitErrors, DataLoss int64
	// Watermark is each partition's watermark (Unix ms) and PartitionLag
	// the records between the reader's position and the partition's end, as
	// the reader last reported them; empty when it reports none.
	Watermark    map[int32]int64
	PartitionLag map[int32]int64
}

// Stream is the collector of the streaming job's families.
type Stream struct {
	read func() StreamValues
	now  func() time.Time

	clicksIn, counted, dups, tooLate, rejected, results *prometheus.Desc
	recordsRead, commits, commitErrors, dataLoss        *prometheus.Desc
	watermarkLag, partitionLag, age, running            *prometheus.Desc
}

// NewStream returns the collector that exports what read returns at each
// scrape; now is the clock of the watermark lag and age (nil: time.Now).
func NewStream(read func() StreamValues, now func() time.Time) *Stream {
	if now == nil {
		now = time.Now
	}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &Stream{
		read: read, now: now,
		clicksIn: d(NameClicksIn, "Click lines the streaming job read from the raw topic, valid or not."),
		counted:  d("adclick_clicks_counted_total", "Valid clicks counted in real time: neither duplicates nor too late. Clicks in = counted + duplicates + too late + rejected."),
		dups:     d(NameDuplicates, "Valid clicks dropped as duplicates of an event_id already counted."),
		tooLate:  d(NameTooLate, "Clicks that arrived after their window closed plus the allowed lateness: kept in the raw store, not counted in real time."),
		rejected: d(NameRejected, "Invalid click lines sent to the dead-letter topic, by reason.", "reason"),
		results:  d("adclick_results_written_total", "Result records (counts, filtered counts, top lists; every accumulating pane) handed to the results topic's writers."),

		recordsRead:  d("adclick_kafka_records_read_total", "Records the streaming job's Kafka reader read from the raw topic."),
		commits:      d("adclick_kafka_offset_commits_total", "Safe restart offsets the Kafka reader committed to its consumer group."),
		commitErrors: d("adclick_kafka_offset_commit_errors_total", "Offset commits that failed (an older, still safe, commit stays)."),
		dataLoss:     d("adclick_kafka_data_loss_events_total", "Times the broker reported records lost before the reader read them."),

		watermarkLag: d("adclick_stream_watermark_lag_seconds", "Wall clock minus the Kafka reader's watermark, by raw-topic partition.", "partition"),
		partitionLag: d("adclick_stream_partition_lag_records", "Records between the Kafka reader's position and the end of its raw-topic partition.", "partition"),
		age:          d("adclick_stream_metrics_age_seconds", "Age of the job metrics these figures come from (the job service is polled every few seconds)."),
		running:      d("adclick_stream_job_running", "1 while the streaming job is in a non-terminal state."),
	}
}

// Describe sends every family's description.
func (s *Stream) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{s.clicksIn, s.counted, s.dups, s.tooLate, s.rejected, s.results,
		s.recordsRead, s.commits, s.commitErrors, s.dataLoss, s.watermarkLag, s.partitionLag, s.age, s.running} {
		ch <- d
	}
}

// Collect exports the latest values.
func (s *Stream) Collect(ch chan<- prometheus.Metric) {
	v := s.read()
	if v.At.IsZero() {
		return
	}
	now := s.now()
	counter := func(d *prometheus.Desc, n int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(n), labels...)
	}
	gauge := func(d *prometheus.Desc, x float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, x, labels...)
	}
	counter(s.clicksIn, v.ClicksIn)
	counter(s.counted, v.Counted)
	counter(s.dups, v.Duplicates)
	counter(s.tooLate, v.TooLate)
	for _, r := range click.Reasons {
		counter(s.rejected, v.Rejected[r], string(r))
	}
	counter(s.results, v.ResultsWritten)
	counter(s.recordsRead, v.RecordsRead)
	counter(s.commits, v.Commits)
	counter(s.commitErrors, v.CommitErrors)
	counter(s.dataLoss, v.DataLoss)
	for p, wm := range v.Watermark {
		gauge(s.watermarkLag, now.Sub(time.UnixMilli(wm)).Seconds(), strconv.Itoa(int(p)))
	}
	for p, n := range v.PartitionLag {
		gauge(s.partitionLag, float64(n), strconv.Itoa(int(p)))
	}
	gauge(s.age, now.Sub(v.At).Seconds())
	running := 0.0
	if v.Running {
		running = 1
	}
	gauge(s.running, running)
}

// Freshness is the collector of end-to-end freshness: how far the newest
// stored minute is behind the clock.
type Freshness struct {
	newest  func(ctx context.Context) (int64, error)
	now     func() time.Time
	timeout time.Duration
	fresh   *prometheus.Desc
	newestD *prometheus.Desc
}

// NewFreshness returns the freshness collector. newest returns the start
// (Unix seconds) of the newest minute that has stored results, or an error
// (nothing stored yet, the store unavailable: then no freshness is
// exported, so that an alert on it sees the series vanish, not a stale value).
func NewFreshness(newest func(ctx context.Context) (int64, error), now func() time.Time) *Freshness {
	if now == nil {
		now = time.Now
	}
	return &Freshness{
		newest: newest, now: now, timeout: 2 * time.Second,
		fresh: prometheus.NewDesc("adclick_freshness_seconds",
			"Wall clock minus the start of the newest minute with stored results: how old the newest data a client can read is.", nil, nil),
		newestD: prometheus.NewDesc("adclick_newest_minute_timestamp_seconds",
			"Start (Unix time) of the newest minute with stored results.", nil, nil),
	}
}

// Describe sends the families' descriptions.
func (f *Freshness) Describe(ch chan<- *prometheus.Desc) {
	ch <- f.fresh
	ch <- f.newestD
}

// Collect asks the store for its newest minute.
func (f *Freshness) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	m, err := f.newest(ctx)
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(f.fresh, prometheus.GaugeValue, f.now().Sub(time.Unix(m, 0)).Seconds())
	ch <- prometheus.MustNewConstMetric(f.newestD, prometheus.GaugeValue, float64(m))
}

// PartitionLag is one consumer group's lag on one partition.
type PartitionLag struct {
	Group, Topic string
	Partition    int32
	Lag          int64 // records between the group's committed offset and the partition's end
}

// ConsumerLag is the collector of Kafka consumer groups' lag: committed
// offsets against the partitions' end offsets, read from the brokers at each
// scrape. For the DB writers that is how much of their topic they have not
// yet written; the streaming job commits its safe restart point, which stays
// up to the longest window plus the allowed lateness behind by design, so
// for it the trend matters, not the level.
type ConsumerLag struct {
	lags    func(ctx context.Context) ([]PartitionLag, error)
	timeout time.Duration
	lag     *prometheus.Desc
	up      *prometheus.Desc
}

// NewConsumerLag returns the collector of what lags returns (GroupLags
// reads them from Kafka).
func NewConsumerLag(lags func(ctx context.Context) ([]PartitionLag, error)) *ConsumerLag {
	return &ConsumerLag{
		lags: lags, timeout: 3 * time.Second,
		lag: prometheus.NewDesc("adclick_kafka_consumer_lag_records",
			"Records between a consumer group's committed offset and the end of the partition.", []string{"group", "topic", "partition"}, nil),
		up: prometheus.NewDesc("adclick_kafka_consumer_lag_up",
			"1 when the consumer groups' lag could be read from the brokers at this scrape.", nil, nil),
	}
}

// Describe sends the families' descriptions.
func (c *ConsumerLag) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lag
	ch <- c.up
}

// Collect reads the lags.
func (c *ConsumerLag) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	lags, err := c.lags(ctx)
	up := 1.0
	if err != nil {
		up = 0
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up)
	for _, l := range lags {
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(l.Lag), l.Group, l.Topic, strconv.Itoa(int(l.Partition)))
	}
}

// GroupLags reads the lag of groups through adm. A partition whose lag
// cannot be computed (no commit yet, the end offset not listed) is left out.
func GroupLags(adm *kadm.Client, groups ...string) func(ctx context.Context) ([]PartitionLag, error) {
	return func(ctx context.Context) ([]PartitionLag, error) {
		described, err := adm.Lag(ctx, groups...)
		if err != nil {
			return nil, fmt.Errorf("metrics: consumer lag: %w", err)
		}
		var out []PartitionLag
		for _, g := range described.Sorted() {
			if err := g.Error(); err != nil {
				return out, fmt.Errorf("metrics: consumer lag of %s: %w", g.Group, err)
			}
			for _, l := range g.Lag.Sorted() {
				if l.Err == nil && l.Lag >= 0 {
					out = append(out, PartitionLag{Group: g.Group, Topic: l.Topic, Partition: l.Partition, Lag: l.Lag})
				}
			}
		}
		return out, nil
	}
}

// Register registers collectors, saying which failed.
func Register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("metrics: register %T: %w", c, err)
		}
	}
	return nil
}
