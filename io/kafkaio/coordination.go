package kafkaio

import "fmt"

// Coordination says what makes a restart of the reading job exactly-once, and
// so whether the readers may coordinate through the memory of the process they
// run in. It depends on the runner, not on the data.
type Coordination string

const (
	// InProcess is for runners without durable state that run every worker
	// in the submitting process (prism). A restart starts afresh from the
	// committed offsets, so commits are restart points and must be safe:
	// the partitions' readers report the read's smallest watermark to the
	// runner (readWatermarks), and a commit waits until the gated writers
	// have written what the minutes it closes produced (Gate). Both are
	// shared through process memory, which is exactly what such a runner
	// offers. The default.
	InProcess Coordination = "in-process"
	// Checkpointed is for runners that checkpoint the readers' restrictions
	// (offset and estimator) and all keyed state, and run workers in many
	// processes (Flink). A restart from a checkpoint or savepoint resumes
	// every reader and every key where the checkpoint left them, and the
	// sinks' writes are idempotent, so nothing needs to travel between
	// workers outside the runner: each partition reports its own watermark
	// (the runner takes the minimum), no gate is allowed, and commits only
	// report progress (consumer lag). A job started without a checkpoint
	// resumes from those commits with no exactly-once guarantee.
	Checkpointed Coordination = "checkpointed"
)

func (c Coordination) validate() error {
	switch c {
	case InProcess, Checkpointed:
		return nil
	}
	return fmt.Errorf("kafkaio: coordination %q: want %q or %q", c, InProcess, Checkpointed)
}

// shared returns the process-wide watermarks of read id, or nil when the
// readers must not coordinate through process memory.
func (c Coordination) shared(id string) *readWatermarks {
	if c == Checkpointed {
		return nil
	}
	return watermarksOf(id)
}
