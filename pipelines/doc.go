// Package pipelines assembles complete Beam pipelines from sources, the
// shared aggregation composite (transforms.Aggregate) and sinks: the bounded
// recount of click log files, the streaming job and the replay from the raw
// store. Pipelines hold wiring only; every rule of the aggregation lives in
// transforms.
package pipelines
