// Package storeio is the Beam I/O of the stores: a bounded, splittable read of
// raw clicks for an event-time range (ReadRaw), and batched, idempotent
// writes of raw clicks (WriteRaw) and aggregation results (WriteAggregates).
// The same transforms serve both backends; a DoFn carries only a
// backend.Config and opens the store in Setup.
package storeio
