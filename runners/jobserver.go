package runners

import (
	"context"
	"errors"
	"fmt"
	"time"

	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// StartPrismJobService starts prism's job service in this process, on
// 127.0.0.1 only, and returns its endpoint (host:port). It serves until the
// process exits. Submit to it as to a Flink job server: Options{Runner:
// Flink, Endpoint: endpoint}. It runs workers as the submitted pipeline's
// environment says: LOOPBACK (in the submitter), PROCESS (a boot command it
// starts) or DOCKER.
//
// Prism's own job server command (cmd/prism) binds its port on every
// interface; this one is moved to loopback as the in-process one is (see
// startPrismJobServer).
func StartPrismJobService() (string, error) {
	return startPrismJobServer()
}

// CancelJobs cancels every job on the job service at endpoint that has not
// ended, and waits until none is left running or ctx ends. A job service
// that is about to stop calls it so that its workers stop with the job
// instead of outliving it.
func CancelJobs(ctx context.Context, endpoint string) error {
	cc, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("runners: job service %s: %w", endpoint, err)
	}
	defer cc.Close()
	client := jobpb.NewJobServiceClient(cc)
	for cancelled := map[string]bool{}; ; {
		jobs, err := client.GetJobs(ctx, &jobpb.GetJobsRequest{})
		if err != nil {
			return fmt.Errorf("runners: list jobs on %s: %w", endpoint, err)
		}
		var errs []error
		running := 0
		for _, j := range jobs.GetJobInfo() {
			if jobEnded(j.GetState()) {
				continue
			}
			running++
			if cancelled[j.GetJobId()] {
				continue
			}
			if _, err := client.Cancel(ctx, &jobpb.CancelJobRequest{JobId: j.GetJobId()}); err != nil {
				errs = append(errs, fmt.Errorf("runners: cancel job %s: %w", j.GetJobId(), err))
				continue
			}
			cancelled[j.GetJobId()] = true
		}
		if running == 0 || len(errs) > 0 {
			return errors.Join(errs...)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("runners: %d jobs still running on %s: %w", running, endpoint, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func jobEnded(s jobpb.JobState_Enum) bool {
	switch s {
	case jobpb.JobState_DONE, jobpb.JobState_FAILED, jobpb.JobState_CANCELLED, jobpb.JobState_DRAINED, jobpb.JobState_UPDATED:
		return true
	}
	return false
}
