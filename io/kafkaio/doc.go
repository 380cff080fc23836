// Package kafkaio is adclick's native Go Kafka I/O for Beam, on franz-go:
// Read, an unbounded splittable DoFn with its own watermark estimator and
// exactly-once-restart offset commits, and Write, a batched idempotent
// producer. Beam's Go SDK has no native Kafka I/O and the cross-language one
// needs a Java expansion service; this one follows the shape of Beam's
// io/natsio.
//
// # Reading
//
// One element and one restriction per partition: an offset range [start, ∞)
// (or [start, high watermark at start) with EndOffsets). Partitions are listed
// when the pipeline starts (so building a pipeline needs no broker); partitions
// added later are read after a restart. ProcessElement polls
// batches and emits one click.Lines per batch, never one element per
// record. It checkpoints itself after CheckpointEvery or CheckpointAfter
// records (portable runners never ask an SDF to split, and the runner learns
// the watermark only at checkpoints); the runner's own split requests are
// refused, so a partition is always read by exactly one restriction.
//
// # Watermark
//
// Per partition, from the records' event times: the click.EventTimeHeader the
// log watcher sets (the record timestamp is the publishing time: the raw
// topic has LogAppendTime, so that retention counts from publishing), or the
// record timestamp of a record published before that header existed; none
// for a click.NoEventTimeHeader record or a broker-stamped one without the
// header (eventTime in read.go):
//
//   - an event time more than MaxSkew ahead of the wall clock counts as
//     wall clock + MaxSkew, so one bogus future click cannot close every window;
//   - wm = max event time seen − WatermarkDelay, rounded down to WatermarkStep,
//     never decreasing;
//   - idle rule: after IdleTimeout with nothing to read, wm moves to
//     wall clock − WatermarkDelay − MaxSkew (never backwards), so a quiet
//     partition cannot stall the job; the advance is recorded as a "floor" at
//     the next offset to read;
//   - the Watermark of an emitted Lines batch is the partition watermark before
//     the batch's records were seen, and the value the runner sees is the same
//     estimator. A batch never spans a watermark change, so the watermark a
//     record is judged against depends on the records before it, the floors and
//     the restored state only — not on how polls happened to cut batches.
//
// # Offsets and exactly-once restarts
//
// What makes a restart exactly-once depends on the runner (Coordination). On
// a runner that checkpoints the readers' restrictions and keyed state (Flink,
// Checkpointed), a restart resumes from the checkpoint and commits only
// report progress; nothing is shared between worker processes outside the
// runner. The rest of this section is the InProcess mode (prism), where the
// job keeps no durable state, so a restart must re-read every
// record of every window that may still be open. The invariant kept per
// partition is:
//
//	committed offset C ≤ the smallest offset of any record whose event minute m
//	has m + WindowSpan + AllowedLateness + Margin > the partition watermark,
//	and the commit metadata of C is the estimator exactly as it was just before
//	record C was read (watermark, largest timestamp, later idle floors).
//
// The reader tracks, in bounded memory, each open event minute's first offset
// and the estimator at that offset; every CommitInterval it computes the safe
// position (the smallest such offset, or the next offset when no minute is
// open) and commits it to Group once it is CommitDelay old and, with a Gate
// (the streaming pipeline sets one), once the gated writers' watermark has
// passed the minutes it closes: only then are their results in the sink's
// topic, whatever the load. On start a
// partition resumes from the committed offset with the estimator restored from
// the metadata, so re-reading repeats the original run's too-late decisions;
// without a commit it starts at StartOffset. A record re-read after C whose
// minute was already closed when C was computed (a late click behind the
// restart point) is judged against that closing watermark, carried in the
// metadata as closed=ms, and is too late: its window's count is final
// downstream, and counting the record again would start that window afresh
// from only the records after C and overwrite the complete count. Commit failures only leave an
// older, still safe, commit in place.
//
// Bounded mode ends when a partition's next offset reaches its end offset; a
// partition whose last offsets hold no records (transaction markers) would not
// end. Our producers are idempotent but not transactional, so offsets are
// contiguous.
//
// Known limits of the reproduction: the future-timestamp clamp depends on the
// wall clock at reading time (it only matters for timestamps more than MaxSkew
// ahead); at most 64 idle floors after the committed offset are kept, and a
// record in a minute more than MaxSkew in the future is tracked in the clamped
// minute.
//
// Prism: the watermark stall reported upstream (apache/beam#39446) for unbounded sources that
// start empty (#39446) did not show with this reader: it reports a watermark
// at every self-checkpoint, idle or not, and a window over data produced after
// the start fires (TestWatermarkIdlePartition).
//
// # Writing
//
// Write produces asynchronously from ProcessElement and flushes in
// FinishBundle, so a bundle completes only when all of its records are
// acknowledged; franz-go's producer is idempotent by default. Producer is the
// same thing without Beam.
package kafkaio
