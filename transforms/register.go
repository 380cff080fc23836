package transforms

import (
	"context"
	"encoding/json"
	"reflect"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/adclick/adclick/transforms/result"
)

// Every DoFn, CombineFn, emitter and coder is registered so that the SDK
// calls them through generated wrappers, not reflection.
func init() {
	register.DoFn5x0[context.Context, Lines, func(beam.EventTime, string, Partial), func(DeadLetter), func(Clicks)](&aggregateLinesFn{})
	register.DoFn3x0[context.Context, Clicks, func(beam.EventTime, string, Partial)](&aggregateClicksFn{})
	register.DoFn4x0[string, AdMinute, func(result.Record), func(string, AdCount)](&explodeFn{})
	register.Function4x0(stampMinuteFn)
	register.DoFn4x0[beam.Window, string, []result.AdCount, func(result.Record)](&topRecordFn{})

	register.Combiner3[Partial, Partial, AdMinute](&mergeFn{})
	register.Combiner3[Snapshot, AdCount, Snapshot](&snapshotFn{})
	register.Combiner3[Minutes, MinuteSnapshot, []result.AdCount](&topFn{})

	register.Emitter3[beam.EventTime, string, Partial]()
	register.Emitter1[DeadLetter]()
	register.Emitter1[Clicks]()
	register.Emitter1[result.Record]()
	register.Emitter2[string, AdCount]()
	register.Emitter2[string, MinuteSnapshot]()

	beam.RegisterType(reflect.TypeOf((*Lines)(nil)).Elem())
	beam.RegisterType(reflect.TypeOf((*Clicks)(nil)).Elem())
	beam.RegisterType(reflect.TypeOf((*DeadLetter)(nil)).Elem())
	beam.RegisterType(reflect.TypeOf((*AdMinute)(nil)).Elem())
	beam.RegisterType(reflect.TypeOf((*AdCount)(nil)).Elem())

	register.Function1x2(encodePartial)
	register.Function1x2(decodePartial)
	register.Function1x2(encodeSnapshot)
	register.Function1x2(decodeSnapshot)
	register.Function1x2(encodeMinuteSnapshot)
	register.Function1x2(decodeMinuteSnapshot)
	register.Function1x2(encodeMinutes)
	register.Function1x2(decodeMinutes)
	register.Function1x2(encodeRecord)
	register.Function1x2(decodeRecord)
	beam.RegisterCoder(reflect.TypeOf((*Partial)(nil)).Elem(), encodePartial, decodePartial)
	beam.RegisterCoder(reflect.TypeOf((*Snapshot)(nil)).Elem(), encodeSnapshot, decodeSnapshot)
	beam.RegisterCoder(reflect.TypeOf((*MinuteSnapshot)(nil)).Elem(), encodeMinuteSnapshot, decodeMinuteSnapshot)
	beam.RegisterCoder(reflect.TypeOf((*Minutes)(nil)).Elem(), encodeMinutes, decodeMinutes)
	beam.RegisterCoder(reflect.TypeOf((*result.Record)(nil)).Elem(), encodeRecord, decodeRecord)
}

// result.Record has pointer fields; its JSON form (SPEC §4) is also its coder.
func encodeRecord(r result.Record) ([]byte, error) { return r.AppendJSON(nil), nil }
func decodeRecord(b []byte) (result.Record, error) {
	var r result.Record
	err := json.Unmarshal(b, &r)
	return r, err
}
