// Package transforms holds the Beam transforms of adclick, shared by every
// pipeline: the streaming job, the file recount and the replay from the raw
// store all call Aggregate (or AggregateClicks), so real time and
// recalculation run one codebase (the design's Kappa architecture).
//
// Shape of the composite, and why:
//
//	Lines ─► [fused: parse+validate ─► too-late check ─► dedup ─► per-bundle
//	          pre-aggregation] ─► one MinutePartial per (minute, shard of the ad)
//	  batch:     merge per key ─► counts, filtered counts
//	                          └─► per shard: sliding top-N (batchtop.go, rank.go) ─► merge per window
//	  streaming: count stage, keyed state (countstate.go) ─► counts, filtered counts
//	                          └─► top stage, keyed state (topstate.go) ─► top-N
//
// Per-click work stays inside one fused DoFn: any per-click shuffle or state
// call caps a Beam job at tens of thousands of clicks per second, while the
// fused stage runs at the speed of the parser. What crosses the shuffle is one
// partial per (minute, shard, bundle), carrying every ad's 128-bit id hashes,
// so the runner's work follows the open minutes, not the ads or the click
// rate, and duplicates that landed in different bundles, on different workers
// or before and after a restart still merge to one click. Streaming uses no
// runner windows: the too-late rule is the fused stage's alone, and state is
// cleared by event-time timers. Results are monotone (each emission carries
// the full value so far) and sinks merge, which is the exactly-once contract.
package transforms
