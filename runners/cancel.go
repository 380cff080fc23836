package runners

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

var jobSeq atomic.Int64

// newJobName names one Run's job, so that it can be found in the job
// service again.
func newJobName() string {
	return fmt.Sprintf("adclick-%d-%d", time.Now().UnixNano(), jobSeq.Add(1))
}

// cancelJob cancels the named job on the job service at endpoint unless it
// has ended. The Go SDK stops waiting for a job when its context ends but
// never cancels it: prism's in-process job server then keeps the job going
// without its worker, and in a long-lived process (a test binary) such a job
// can spin on a core for the rest of the process's life.
func cancelJob(endpoint, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cc, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		slog.Warn("runners: cannot reach the job service to cancel a job", "job", name, "err", err)
		return
	}
	defer cc.Close()
	client := jobpb.NewJobServiceClient(cc)
	jobs, err := client.GetJobs(ctx, &jobpb.GetJobsRequest{})
	if err != nil {
		slog.Warn("runners: cannot list jobs to cancel one", "job", name, "err", err)
		return
	}
	for _, j := range jobs.GetJobInfo() {
		if j.GetJobName() != name {
			continue
		}
		switch j.GetState() {
		case jobpb.JobState_DONE, jobpb.JobState_FAILED, jobpb.JobState_CANCELLED, jobpb.JobState_DRAINED, jobpb.JobState_UPDATED:
			continue
		}
		if _, err := client.Cancel(ctx, &jobpb.CancelJobRequest{JobId: j.GetJobId()}); err != nil {
			slog.Warn("runners: cancelling a job failed", "job", name, "err", err)
		}
	}
}
