// Package metrics defines the Prometheus metric families every adclick job
// exports about the pipeline (docs/spec.md §1–§2): clicks in, rejected by reason,
// duplicates, too late, windows fired, store writes and consumer lag. One
// definition keeps the names, labels and help texts the same in every
// process, so dashboards and alerts work on any deployment, and the query
// service's dashboard reads them from /metrics in the all-in-one.
//
// A job builds one Pipeline per component with the registry it was given
// (never the global one):
//
//	m, err := metrics.NewPipeline(reg, "aggregate")
//	m.ClicksIn.Inc()
//	m.Reject(click.ReasonBadTimestamp)
//
// Several components may register into one registry (the all-in-one): each
// series carries a constant label component="<name>".
package metrics

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/adclick/adclick/domain/click"
)

// Family names, for readers that parse the exposition (the dashboard) and for
// tests.
const (
	NameClicksIn         = "adclick_clicks_in_total"
	NameRejected         = "adclick_clicks_rejected_total"
	NameDuplicates       = "adclick_clicks_duplicate_total"
	NameTooLate          = "adclick_clicks_too_late_total"
	NameWindowsFired     = "adclick_windows_fired_total"
	NameStoreWriteErrors = "adclick_store_write_errors_total"
	NameStoreWriteTime   = "adclick_store_write_duration_seconds"
	NameConsumerLag      = "adclick_consumer_lag_records"
)

// Store label values.
const (
	StoreRaw       = "raw"       // the raw click store
	StoreAggregate = "aggregate" // the aggregation store
)

// Window kinds: the record types of docs/spec.md §4.
const (
	KindCount    = "count"
	KindFiltered = "filtered_count"
	KindTop      = "top"
)

// Pipeline is one component's pipeline metrics.
type Pipeline struct {
	// ClicksIn counts input lines/messages read, valid or not.
	ClicksIn prometheus.Counter
	// Rejected counts invalid input by click.Reason (label "reason"); every
	// reason's series exists from the start, at 0.
	Rejected *prometheus.CounterVec
	// Duplicates counts valid clicks dropped because their event_id was
	// already counted.
	Duplicates prometheus.Counter
	// TooLate counts clicks whose window had closed beyond the allowed
	// lateness (kept in the raw store, not counted in real time).
	TooLate prometheus.Counter
	// WindowsFired counts result records emitted, by kind (count,
	// filtered_count, top); accumulating re-firings count each time.
	WindowsFired *prometheus.CounterVec
	// StoreWriteErrors counts failed store writes by store (raw, aggregate).
	StoreWriteErrors *prometheus.CounterVec
	// StoreWriteDuration is the time of one store write call (a batch), by
	// store, successful or not.
	StoreWriteDuration *prometheus.HistogramVec
	// ConsumerLag is how many records a Kafka consumer is behind the
	// partition's end, by topic and partition.
	ConsumerLag *prometheus.GaugeVec
}

// NewPipeline creates and registers the pipeline families for component
// (e.g. "ingest", "aggregate", "sink", "replay").
func NewPipeline(reg prometheus.Registerer, component string) (*Pipeline, error) {
	if reg == nil {
		return nil, fmt.Errorf("metrics: a registerer is required")
	}
	if component == "" {
		return nil, fmt.Errorf("metrics: a component name is required")
	}
	cl := prometheus.Labels{"component": component}
	p := &Pipeline{
		ClicksIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: NameClicksIn, ConstLabels: cl,
			Help: "Click events read from the input, valid or not.",
		}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameRejected, ConstLabels: cl,
			Help: "Invalid click events sent to the dead-letter output, by reason.",
		}, []string{"reason"}),
		Duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: NameDuplicates, ConstLabels: cl,
			Help: "Valid click events dropped as duplicates of an event_id already counted.",
		}),
		TooLate: prometheus.NewCounter(prometheus.CounterOpts{
			Name: NameTooLate, ConstLabels: cl,
			Help: "Click events that arrived after their window closed plus the allowed lateness.",
		}),
		WindowsFired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameWindowsFired, ConstLabels: cl,
			Help: "Aggregation results emitted (window firings), by record kind.",
		}, []string{"kind"}),
		StoreWriteErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameStoreWriteErrors, ConstLabels: cl,
			Help: "Store write calls that failed, by store.",
		}, []string{"store"}),
		StoreWriteDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: NameStoreWriteTime, ConstLabels: cl,
			Help:    "Duration of one store write call (a batch), by store.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"store"}),
		ConsumerLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: NameConsumerLag, ConstLabels: cl,
			Help: "Records between a consumer's position and the end of its Kafka partition.",
		}, []string{"topic", "partition"}),
	}
	for _, r := range click.Reasons {
		p.Rejected.WithLabelValues(string(r))
	}
	for _, k := range []string{KindCount, KindFiltered, KindTop} {
		p.WindowsFired.WithLabelValues(k)
	}
	for _, s := range []string{StoreRaw, StoreAggregate} {
		p.StoreWriteErrors.WithLabelValues(s)
	}
	for _, c := range []prometheus.Collector{p.ClicksIn, p.Rejected, p.Duplicates, p.TooLate, p.WindowsFired, p.StoreWriteErrors, p.StoreWriteDuration, p.ConsumerLag} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register component %q: %w", component, err)
		}
	}
	return p, nil
}

// Reject counts one rejected event.
func (p *Pipeline) Reject(r click.Reason) { p.Rejected.WithLabelValues(string(r)).Inc() }

// ObserveStoreWrite records one store write call that started at start and
// ended with err.
func (p *Pipeline) ObserveStoreWrite(store string, start time.Time, err error) {
	p.StoreWriteDuration.WithLabelValues(store).Observe(time.Since(start).Seconds())
	if err != nil {
		p.StoreWriteErrors.WithLabelValues(store).Inc()
	}
}
