package cassandrastore

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// storeMetrics count what the failure behaviour in the package doc promises.
type storeMetrics struct {
	retries  *prometheus.CounterVec
	failures *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*storeMetrics, error) {
	m := &storeMetrics{
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "adclick_store_retries_total", ConstLabels: prometheus.Labels{"backend": "cassandra"},
			Help: "Store write batches retried after a failure, by operation.",
		}, []string{"op"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "adclick_store_failures_total", ConstLabels: prometheus.Labels{"backend": "cassandra"},
			Help: "Store calls that failed as unavailable (after retries for writes), by operation.",
		}, []string{"op"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.retries, m.failures} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("cassandrastore: metrics: %w", err)
			}
		}
	}
	return m, nil
}
