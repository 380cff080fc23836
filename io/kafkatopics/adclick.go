package kafkatopics

import "time"

// MinRawRetention is the shortest raw-topic retention adclick accepts: a
// restarted streaming job re-reads every open window from its first record,
// up to the longest top-N window (60 min) plus the allowed lateness (5 min)
// back, and a shorter retention could delete what it must re-read.
const MinRawRetention = 2 * time.Hour

// Set is adclick's three topics as an operator names and sizes them.
type Set struct {
	Raw, Results, DeadLetters string
	Partitions                int32
	ReplicationFactor         int16 // -1: the broker's default
	RawRetention              time.Duration
	ResultsRetention          time.Duration
	DeadLetterRetention       time.Duration
}

// Topics are the specifications of s, with the settings the components rely
// on: raw, results and dead letters, in that order.
func (s Set) Topics() []Topic {
	return []Topic{
		// Raw clicks, keyed by ad_id. LogAppendTime: the broker stamps each
		// record with its own clock, so time retention counts from when a
		// click was published. The click's event time, which the streaming
		// job's watermark is built from, travels in a record header
		// (click.EventTimeHeader). With event times as timestamps
		// (CreateTime, as before), a backfilled log older than retention.ms
		// was deleted at the broker's next retention check, before the job
		// read it.
		{Name: s.Raw, Partitions: s.Partitions, ReplicationFactor: s.ReplicationFactor, CleanupPolicy: "delete",
			Retention: s.RawRetention, TimestampType: "LogAppendTime", UnlimitedBytes: true},
		// Results are written keyed by what they overwrite, yet not
		// compacted: compaction keeps only the newest record of a key, and
		// the newest is not always the largest. A restarted job re-reads
		// its open windows and emits early panes counted from part of
		// their data after the full pane it wrote before the crash (for
		// good, if it stops again before catching up). The DB writer's
		// merge keeps the larger value only if it reads both; a writer
		// reading a compacted topic from the start (a new store, a reset
		// group) could store the lower one.
		{Name: s.Results, Partitions: s.Partitions, ReplicationFactor: s.ReplicationFactor, CleanupPolicy: "delete",
			Retention: s.ResultsRetention, UnlimitedBytes: true},
		{Name: s.DeadLetters, Partitions: s.Partitions, ReplicationFactor: s.ReplicationFactor, CleanupPolicy: "delete",
			Retention: s.DeadLetterRetention},
	}
}
