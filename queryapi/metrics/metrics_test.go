package metrics

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/adclick/adclick/domain/click"
)

func exposition(t *testing.T, g prometheus.Gatherer) string {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

func TestPipelineFamilies(t *testing.T) {
	reg := prometheus.NewRegistry()
	ingest, err := NewPipeline(reg, "ingest")
	if err != nil {
		t.Fatal(err)
	}
	agg, err := NewPipeline(reg, "aggregate")
	if err != nil {
		t.Fatalf("a second component in the same registry: %v", err)
	}
	ingest.ClicksIn.Add(5)
	ingest.Reject(click.ReasonBadTimestamp)
	ingest.Reject(click.ReasonBadTimestamp)
	agg.Duplicates.Inc()
	agg.TooLate.Add(3)
	agg.WindowsFired.WithLabelValues(KindTop).Inc()
	agg.ObserveStoreWrite(StoreAggregate, time.Now(), errors.New("down"))
	agg.ObserveStoreWrite(StoreAggregate, time.Now(), nil)
	agg.ConsumerLag.WithLabelValues("clicks", "0").Set(42)

	text := exposition(t, reg)
	for _, want := range []string{
		`adclick_clicks_in_total{component="ingest"} 5`,
		`adclick_clicks_in_total{component="aggregate"} 0`,
		`adclick_clicks_rejected_total{component="ingest",reason="bad_timestamp"} 2`,
		`adclick_clicks_rejected_total{component="ingest",reason="invalid_json"} 0`,
		`adclick_clicks_duplicate_total{component="aggregate"} 1`,
		`adclick_clicks_too_late_total{component="aggregate"} 3`,
		`adclick_windows_fired_total{component="aggregate",kind="top"} 1`,
		`adclick_store_write_errors_total{component="aggregate",store="aggregate"} 1`,
		`adclick_store_write_duration_seconds_count{component="aggregate",store="aggregate"} 2`,
		`adclick_consumer_lag_records{component="aggregate",partition="0",topic="clicks"} 42`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %s in\n%s", want, text)
		}
	}
	for _, r := range click.Reasons {
		if !strings.Contains(text, `reason="`+string(r)+`"`) {
			t.Errorf("reason %s has no series at start", r)
		}
	}
	for _, name := range []string{NameClicksIn, NameRejected, NameDuplicates, NameTooLate, NameWindowsFired, NameStoreWriteErrors, NameStoreWriteTime, NameConsumerLag} {
		if !strings.Contains(text, "# TYPE "+name+" ") {
			t.Errorf("family %s is not exported", name)
		}
	}
}

func TestPipelineRegistrationErrors(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := NewPipeline(reg, "sink"); err != nil {
		t.Fatal(err)
	}
	if _, err := NewPipeline(reg, "sink"); err == nil {
		t.Fatal("the same component registered twice")
	}
	if _, err := NewPipeline(nil, "x"); err == nil {
		t.Fatal("nil registerer accepted")
	}
	if _, err := NewPipeline(prometheus.NewRegistry(), ""); err == nil {
		t.Fatal("empty component accepted")
	}
}
