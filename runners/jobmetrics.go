package runners

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/coder"
	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// JobMetrics follows the metrics of the jobs Run starts with it (Options.Metrics)
// while they run: it polls the job service that runs them
// (JobService.GetJobMetrics of the portable job API, which prism's and
// Flink's job servers implement) and keeps the latest snapshot, so that a
// long-lived process (the streaming job's) can export the job's own counters
// with their real values, and a long batch command can show its progress.
//
// The workers' Beam metrics cannot be read any other way: a DoFn runs in
// worker processes (or, with LOOPBACK, in a harness that owns its own metric
// store) and reports its metrics to the runner only, at the end of each
// bundle.
//
// One JobMetrics may follow several jobs in turn (reconcile runs one per
// chunk): their counters add up. The zero value polls every DefaultPollInterval.
type JobMetrics struct {
	// Interval is the time between polls (default DefaultPollInterval).
	Interval time.Duration
	// Log gets the reasons a poll failed, at debug level (nil: slog.Default()).
	Log *slog.Logger

	mu   sync.Mutex
	jobs map[string]*jobValues // by job name
}

// DefaultPollInterval is how often JobMetrics asks the job service.
const DefaultPollInterval = 5 * time.Second

// MetricName is a Beam user metric's namespace and name.
type MetricName struct{ Namespace, Name string }

// Gauge is a Beam gauge's latest value and when a worker set it.
type Gauge struct {
	Value int64
	At    time.Time
}

// JobSnapshot is what the job service last reported.
type JobSnapshot struct {
	// At is the time of the newest successful poll; zero before the first.
	At time.Time
	// Running is the number of followed jobs in a non-terminal state.
	Running int
	// Counters are the user counters, summed over transforms and jobs.
	Counters map[MetricName]int64
	// Gauges are the user gauges, the newest value over transforms and jobs.
	Gauges map[MetricName]Gauge
	// Elements counts the elements of each PCollection, by the unique name
	// of the (primitive) transform that produces it, summed over jobs.
	Elements map[string]int64
}

// Counter is one user counter (0 when not reported yet).
func (s JobSnapshot) Counter(namespace, name string) int64 {
	return s.Counters[MetricName{namespace, name}]
}

// jobValues is one job's latest report.
type jobValues struct {
	at       time.Time
	state    jobpb.JobState_Enum
	counters map[MetricName]int64
	gauges   map[MetricName]Gauge
	elements map[string]int64
}

// Snapshot is the latest values of every job followed.
func (m *JobMetrics) Snapshot() JobSnapshot {
	s := JobSnapshot{Counters: map[MetricName]int64{}, Gauges: map[MetricName]Gauge{}, Elements: map[string]int64{}}
	if m == nil {
		return s
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, j := range m.jobs {
		if j.at.After(s.At) {
			s.At = j.at
		}
		if !terminal(j.state) {
			s.Running++
		}
		for k, v := range j.counters {
			s.Counters[k] += v
		}
		for k, g := range j.gauges {
			if old, ok := s.Gauges[k]; !ok || g.At.After(old.At) {
				s.Gauges[k] = g
			}
		}
		for k, v := range j.elements {
			s.Elements[k] += v
		}
	}
	return s
}

func terminal(s jobpb.JobState_Enum) bool {
	switch s {
	case jobpb.JobState_DONE, jobpb.JobState_FAILED, jobpb.JobState_CANCELLED, jobpb.JobState_DRAINED, jobpb.JobState_UPDATED:
		return true
	}
	return false
}

// follow polls the job named name on the job service at endpoint until the
// returned stop is called; stop polls once more, so that a finished job's
// final values are kept. A nil JobMetrics follows nothing.
func (m *JobMetrics) follow(ctx context.Context, endpoint, name string) (stop func()) {
	if m == nil || endpoint == "" {
		return func() {}
	}
	log := m.Log
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "jobmetrics", "job", name)
	cc, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Warn("cannot reach the job service: no job metrics", "endpoint", endpoint, "err", err)
		return func() {}
	}
	p := &poller{m: m, name: name, client: jobpb.NewJobServiceClient(cc), log: log}
	interval := m.Interval
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The job is submitted after Run starts following it: look for it
		// every second until it shows, then every interval.
		t := time.NewTimer(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			p.poll(ctx)
			if p.jobID == "" {
				t.Reset(time.Second)
			} else {
				t.Reset(interval)
			}
		}
	}()
	return func() {
		cancel()
		<-done
		fctx, fcancel := context.WithTimeout(context.Background(), 5*time.Second)
		p.poll(fctx)
		fcancel()
		cc.Close()
	}
}

// poller follows one job.
type poller struct {
	m      *JobMetrics
	name   string
	client jobpb.JobServiceClient
	log    *slog.Logger

	jobID    string
	producer map[string]string // PCollection id → unique name of the transform producing it
}

func (p *poller) poll(ctx context.Context) {
	if err := p.pollOnce(ctx); err != nil && ctx.Err() == nil {
		p.log.Debug("polling job metrics failed", "err", err)
	}
}

func (p *poller) pollOnce(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var state jobpb.JobState_Enum
	if p.jobID == "" {
		jobs, err := p.client.GetJobs(ctx, &jobpb.GetJobsRequest{})
		if err != nil {
			return fmt.Errorf("listing jobs: %w", err)
		}
		for _, j := range jobs.GetJobInfo() {
			if j.GetJobName() == p.name {
				p.jobID, state = j.GetJobId(), j.GetState()
			}
		}
		if p.jobID == "" {
			return nil // not submitted yet
		}
		pl, err := p.client.GetPipeline(ctx, &jobpb.GetJobPipelineRequest{JobId: p.jobID})
		if err != nil {
			p.jobID = ""
			return fmt.Errorf("reading the job's pipeline: %w", err)
		}
		p.producer = producers(pl.GetPipeline())
	} else {
		st, err := p.client.GetState(ctx, &jobpb.GetJobStateRequest{JobId: p.jobID})
		if err != nil {
			return fmt.Errorf("reading the job's state: %w", err)
		}
		state = st.GetState()
	}
	res, err := p.client.GetJobMetrics(ctx, &jobpb.GetJobMetricsRequest{JobId: p.jobID})
	if err != nil {
		return fmt.Errorf("reading the job's metrics: %w", err)
	}
	v := decodeMetrics(res.GetMetrics(), p.producer)
	v.at, v.state = time.Now(), state
	p.m.mu.Lock()
	if p.m.jobs == nil {
		p.m.jobs = map[string]*jobValues{}
	}
	p.m.jobs[p.name] = v
	p.m.mu.Unlock()
	return nil
}

// producers maps each PCollection to the primitive transform that outputs
// it (composites list their children's outputs as theirs too).
func producers(p *pipepb.Pipeline) map[string]string {
	out := map[string]string{}
	for _, t := range p.GetComponents().GetTransforms() {
		if len(t.GetSubtransforms()) > 0 {
			continue
		}
		for _, pc := range t.GetOutputs() {
			out[pc] = t.GetUniqueName()
		}
	}
	return out
}

// Metric URNs of the portable API (model/pipeline/v1/metrics.proto).
const (
	urnUserCounter  = "beam:metric:user:sum_int64:v1"
	urnUserGauge    = "beam:metric:user:latest_int64:v1"
	urnElementCount = "beam:metric:element_count:v1"
)

// decodeMetrics reads the committed results, or the attempted ones when the
// runner commits none. Prism's committed values are the sums over finished
// bundles, its attempted ones only the bundles in progress; a runner that
// reports attempted values only reports them cumulated.
func decodeMetrics(r *jobpb.MetricResults, producer map[string]string) *jobValues {
	infos := r.GetCommitted()
	if len(infos) == 0 {
		infos = r.GetAttempted()
	}
	v := &jobValues{counters: map[MetricName]int64{}, gauges: map[MetricName]Gauge{}, elements: map[string]int64{}}
	for _, mi := range infos {
		l := mi.GetLabels()
		rd := bytes.NewReader(mi.GetPayload())
		switch mi.GetUrn() {
		case urnUserCounter:
			if n, err := coder.DecodeVarInt(rd); err == nil {
				v.counters[MetricName{l["NAMESPACE"], l["NAME"]}] += n
			}
		case urnUserGauge:
			ms, err1 := coder.DecodeVarInt(rd)
			n, err2 := coder.DecodeVarInt(rd)
			if err1 != nil || err2 != nil {
				continue
			}
			k, g := MetricName{l["NAMESPACE"], l["NAME"]}, Gauge{Value: n, At: time.UnixMilli(ms)}
			if old, ok := v.gauges[k]; !ok || g.At.After(old.At) {
				v.gauges[k] = g
			}
		case urnElementCount:
			name, ok := producer[l["PCOLLECTION"]]
			if !ok {
				continue
			}
			if n, err := coder.DecodeVarInt(rd); err == nil {
				v.elements[name] += n
			}
		}
	}
	return v
}
