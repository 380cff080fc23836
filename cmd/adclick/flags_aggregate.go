package main

import (
	"flag"
	"fmt"

	"github.com/adclick/adclick/runners"
	"github.com/adclick/adclick/transforms"
)

// aggOptions are the flags shared by every command that runs the composite.
type aggOptions struct {
	windowSizes string
	topN        int
	runner      string
}

// register registers the flags of a bounded pipeline (aggregate, replay,
// reconcile).
func (o *aggOptions) register(fs *flag.FlagSet) {
	o.registerWith(fs, "Beam runner of this bounded pipeline: prism or direct")
}

// registerStreaming registers them for the streaming job, whose runners are
// others (configFor checks them).
func (o *aggOptions) registerStreaming(fs *flag.FlagSet) {
	o.registerWith(fs, "Beam runner of the streaming job: prism (in-process) or flink (a job server at --endpoint)")
}

func (o *aggOptions) registerWith(fs *flag.FlagSet, runnerUsage string) {
	d := transforms.DefaultConfig()
	fs.StringVar(&o.windowSizes, "window-sizes", joinInts(d.WindowSizes), "top-N window sizes in minutes, comma-separated")
	fs.IntVar(&o.topN, "top-n", d.TopN, "length of each top-N list")
	fs.StringVar(&o.runner, "runner", runners.Prism, runnerUsage)
}

func (o *aggOptions) config() (transforms.Config, error) {
	cfg := transforms.DefaultConfig()
	// One parser for --window-sizes in every command (serve's too).
	sizes, err := parseWindowSizes(o.windowSizes)
	if err != nil {
		return cfg, fmt.Errorf("%w: --window-sizes: %v", errUsage, err)
	}
	cfg.WindowSizes = sizes
	cfg.TopN = o.topN
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("%w: %v", errUsage, err)
	}
	if o.runner != runners.Prism && o.runner != runners.Direct {
		return cfg, fmt.Errorf("%w: --runner %q: bounded pipelines run on prism or direct", errUsage, o.runner)
	}
	return cfg, nil
}

// configFor is config() with the runner check relaxed for streaming jobs,
// which may also run on flink.
func (o *aggOptions) configFor(streaming bool) (transforms.Config, error) {
	if !streaming {
		return o.config()
	}
	r := o.runner
	o.runner = runners.Prism
	cfg, err := o.config()
	o.runner = r
	return cfg, err
}
