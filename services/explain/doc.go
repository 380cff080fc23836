// Package explain shows the clicks behind a stored count (for billing
// disputes): for one ad, a minute range and optionally one filter, it reads
// the raw clicks, applies the aggregation's batch rules per (ad, minute)
// (docs/spec.md §2: one click per event id, the copy with the smallest
// attributes decides the filters), lists every raw click as counted or not
// counted with the reason, and puts the recomputed count and digest of every
// minute beside the stored ones with a verdict (docs/spec.md §6).
//
// It works one minute at a time, so memory is bounded by one minute of one
// ad's clicks, whatever the range.
//
// Too-late clicks: the raw store holds them, replay generations count them,
// the live generation does not. The streaming job records which clicks it
// judged too late (result.TooLate, kept by a store.TooLateStore; StoreTooLate
// is that record as a TooLateSource), and a live minute is explained with it
// when the recount then equals the stored count and digest. Otherwise (no
// record: a minute written before the job recorded them) a live minute whose
// recount differs from the stored value by one or two clicks is explained
// with the digests (toolate.go); a larger difference is reported as
// unexplained, never as a match.
package explain
