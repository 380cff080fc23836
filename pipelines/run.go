package pipelines

import (
	"context"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/adclick/adclick/io/kafkaio"
	"github.com/adclick/adclick/io/store/backend"
	"github.com/adclick/adclick/io/storeio"
	"github.com/adclick/adclick/runners"
	"github.com/adclick/adclick/transforms"
)

// RunRecountFiles builds RecountFiles and runs it on ro's runner. It returns
// the aggregation's counters (transforms.MetricNamespace): the line
// accounting.
func RunRecountFiles(ctx context.Context, paths []string, cfg transforms.Config, outPath, deadPath string, ro runners.Options) (map[string]int64, error) {
	p, s := beam.NewPipelineWithRoot()
	if err := RecountFiles(s, paths, cfg, outPath, deadPath); err != nil {
		return nil, err
	}
	res, err := runners.Run(ctx, p, ro)
	if err != nil {
		return nil, err
	}
	return runners.Counters(res, transforms.MetricNamespace), nil
}

// RunRecountStore builds RecountStore and runs it on ro's runner. It returns
// the number of raw clicks read.
func RunRecountStore(ctx context.Context, st backend.Config, from, to time.Time, cfg transforms.Config, read storeio.ReadOptions, outPath string, ro runners.Options) (int64, error) {
	p, s := beam.NewPipelineWithRoot()
	if err := RecountStore(s, st, from, to, cfg, read, outPath); err != nil {
		return 0, err
	}
	res, err := runners.Run(ctx, p, ro)
	if err != nil {
		return 0, err
	}
	return runners.Counters(res, "adclick.storeio")["raw_clicks_read"], nil
}

// RunStream builds the streaming job and runs it on ro's runner until ctx
// ends (or the job fails). Without a coordination set, the runner picks it
// (CoordinationFor).
func RunStream(ctx context.Context, cfg StreamConfig, ro runners.Options) error {
	if cfg.Raw.Coordination == "" {
		cfg.Raw.Coordination = CoordinationFor(ro.Runner)
	}
	p, s := beam.NewPipelineWithRoot()
	if err := Stream(s, cfg); err != nil {
		return err
	}
	_, err := runners.Run(ctx, p, ro)
	return err
}

// CoordinationFor is how the streaming job's readers coordinate on a runner:
// through the process on prism (no durable state, one process), through the
// runner's checkpoints on Flink (many worker processes).
func CoordinationFor(runner string) kafkaio.Coordination {
	if runner == runners.Flink {
		return kafkaio.Checkpointed
	}
	return kafkaio.InProcess
}
