package logwatch

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	linesRead, published, bytesRead, publishErrors prometheus.Counter
	malformed, blank, cut, truncations, commits    prometheus.Counter
	lag                                            *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "adclick", Subsystem: "logwatch", Name: name, Help: help})
	}
	m := &metrics{
		linesRead:     c("lines_read_total", "Complete lines read from the tailed files."),
		published:     c("lines_published_total", "Lines the broker acknowledged."),
		bytesRead:     c("bytes_read_total", "Bytes of complete lines read (newlines included)."),
		publishErrors: c("publish_errors_total", "Records the producer gave up on; each is sent again."),
		malformed:     c("lines_malformed_total", "Lines that are not valid clicks (published with an empty key, for the dead-letter output)."),
		blank:         c("lines_blank_total", "Empty lines, skipped."),
		cut:           c("lines_cut_total", "Lines longer than the line limit, published cut (and rejected downstream as too long)."),
		truncations:   c("file_truncations_total", "Files seen truncated (copytruncate rotation) and read again from the start."),
		commits:       c("state_commits_total", "Times the acknowledged positions were persisted."),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "adclick", Subsystem: "logwatch", Name: "lag_bytes",
			Help: "Bytes of a file not yet acknowledged by the broker."}, []string{"file"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, col := range []prometheus.Collector{m.linesRead, m.published, m.bytesRead, m.publishErrors, m.malformed, m.blank, m.cut, m.truncations, m.commits, m.lag} {
		if err := reg.Register(col); err != nil {
			return nil, fmt.Errorf("logwatch: register metrics: %w", err)
		}
	}
	return m, nil
}
