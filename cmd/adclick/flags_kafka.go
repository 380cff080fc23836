package main

import (
	"flag"
	"fmt"
	"strings"
)

// topics are the Kafka topics of the design.
type topics struct {
	brokers, raw, results, dead string
}

func (t *topics) register(fs *flag.FlagSet) {
	t.registerRaw(fs)
	fs.StringVar(&t.results, "results-topic", "adclick-results", "topic of aggregation results (keyed by result key)")
	fs.StringVar(&t.dead, "dead-letter-topic", "adclick-dead-letters", "topic of rejected lines with reasons")
}

// registerRaw registers the brokers and the raw topic only (the log watcher's).
func (t *topics) registerRaw(fs *flag.FlagSet) {
	fs.StringVar(&t.brokers, "kafka-brokers", "127.0.0.1:9092", "Kafka brokers, host:port comma-separated")
	fs.StringVar(&t.raw, "raw-topic", "adclick-raw", "topic of raw click lines (keyed by ad_id)")
}

func (t *topics) brokerList() ([]string, error) {
	var out []string
	for _, b := range strings.Split(t.brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: --kafka-brokers is empty", errUsage)
	}
	return out, nil
}
