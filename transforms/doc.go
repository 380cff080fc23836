// Package transforms holds the Beam transforms of adclick, shared by every
// pipeline: the streaming job, the file recount and the replay from the raw
// store all call Aggregate (or AggregateClicks), so real time and
// recalculation run one codebase (the design's Kappa architecture).
//
// Shape of the composite, and why:
//
//	Lines ─► [fused: parse+validate ─► too-late check ─► dedup ─► per-bundle
//	          pre-aggregation by (ad, minute)] ─► partials ─► 1-min windows,
//	          watermark trigger ─► merge ─► counts, filtered counts
//	                                    └─► per-minute snapshot ─► W-minute
//	                                        sliding windows ─► top-N
//
// Per-click work stays inside one fused DoFn: any per-click shuffle or state
// call caps a Beam job at tens of thousands of clicks per second, while the
// fused stage runs at the speed of the parser. What crosses the shuffle is one
// partial per (ad, minute, bundle), carrying the 128-bit hashes of the click
// ids it counted, so duplicates that landed in different bundles, on
// different workers or before and after a restart still merge to one click.
// Results are accumulating and monotone: sinks overwrite by key, which is the
// exactly-once contract (SPEC §2).
package transforms
