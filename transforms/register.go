package transforms

import (
	"context"
	"encoding/binary"
	"errors"
	"reflect"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/state"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/timers"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/adclick/adclick/domain/click"
	"github.com/adclick/adclick/domain/result"
)

// Every DoFn, CombineFn, emitter and coder is registered so that the SDK
// calls them through generated wrappers, not reflection.
func init() {
	register.DoFn6x0[context.Context, click.Lines, func(beam.EventTime, string, MinutePartial), func(click.DeadLetter), func(click.Batch), func(beam.EventTime, result.Record)](&aggregateLinesFn{})
	register.DoFn3x0[context.Context, click.Batch, func(beam.EventTime, string, MinutePartial)](&aggregateClicksFn{})
	register.Function4x0(splitByShardFn)
	register.DoFn4x0[string, MinutePartial, func(result.Record), func(string, minuteAds)](&explodeMinuteFn{})
	register.DoFn3x0[string, shardMinutes, func(string, result.Record)](&shardTopsFn{})
	register.Function3x0(dropTopKeyFn)
	register.Combiner3[shardMinutes, minuteAds, shardMinutes](&gatherFn{})
	register.Combiner1[result.Record](&topMergeFn{})
	register.Combiner3[MinutePartial, MinutePartial, MinutePartial](&mergeMinuteFn{})

	register.DoFn7x1[beam.EventTime, state.Provider, timers.Provider, string, MinutePartial, func(result.Record), func(string, MinuteSnapshot), error](&countFn{})
	register.DoFn6x1[beam.EventTime, state.Provider, timers.Provider, string, MinuteSnapshot, func(result.Record), error](&topStreamFn{})

	register.Emitter3[beam.EventTime, string, MinutePartial]()
	register.Emitter2[string, MinutePartial]()
	register.Emitter1[click.DeadLetter]()
	register.Emitter1[click.Batch]()
	register.Emitter1[result.Record]()
	register.Emitter2[string, MinuteSnapshot]()
	register.Emitter2[string, minuteAds]()
	register.Emitter2[string, result.Record]()
	register.Emitter2[beam.EventTime, result.Record]()

	beam.RegisterType(reflect.TypeOf((*click.Lines)(nil)).Elem())
	beam.RegisterType(reflect.TypeOf((*click.Batch)(nil)).Elem())
	beam.RegisterType(reflect.TypeOf((*click.DeadLetter)(nil)).Elem())
	beam.RegisterType(reflect.TypeOf((*AdMinute)(nil)).Elem())
	beam.RegisterType(reflect.TypeOf((*AdCount)(nil)).Elem())

	register.Function1x2(encodePartial)
	register.Function1x2(decodePartial)
	register.Function1x2(encodeMinutePartial)
	register.Function1x2(decodeMinutePartial)
	register.Function1x2(encodeMinuteSnapshot)
	register.Function1x2(decodeMinuteSnapshot)
	register.Function1x2(encodeTopBase)
	register.Function1x2(decodeTopBase)
	register.Function1x2(encodeMinuteAds)
	register.Function1x2(decodeMinuteAds)
	register.Function1x2(encodeShardMinutes)
	register.Function1x2(decodeShardMinutes)
	register.Function1x2(encodeRecord)
	register.Function1x2(decodeRecord)
	beam.RegisterCoder(reflect.TypeOf((*Partial)(nil)).Elem(), encodePartial, decodePartial)
	beam.RegisterCoder(reflect.TypeOf((*MinutePartial)(nil)).Elem(), encodeMinutePartial, decodeMinutePartial)
	beam.RegisterCoder(reflect.TypeOf((*MinuteSnapshot)(nil)).Elem(), encodeMinuteSnapshot, decodeMinuteSnapshot)
	beam.RegisterCoder(reflect.TypeOf((*TopBase)(nil)).Elem(), encodeTopBase, decodeTopBase)
	beam.RegisterCoder(reflect.TypeOf((*result.Record)(nil)).Elem(), encodeRecord, decodeRecord)
	beam.RegisterCoder(reflect.TypeOf((*minuteAds)(nil)).Elem(), encodeMinuteAds, decodeMinuteAds)
	beam.RegisterCoder(reflect.TypeOf((*shardMinutes)(nil)).Elem(), encodeShardMinutes, decodeShardMinutes)
}

// result.Record crosses fusion boundaries in volume (every count and
// filtered count): a compact binary form, not its JSON.
const (
	recCount byte = iota + 1
	recFiltered
	recTop
	recTooLate
)

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func encodeRecord(r result.Record) ([]byte, error) {
	var b []byte
	switch {
	case r.Count != nil:
		b = append(b, recCount)
		b = appendStr(b, r.Count.AdID)
		b = binary.AppendVarint(b, r.Count.Minute)
		b = binary.AppendVarint(b, r.Count.Count)
		b = appendDigest(b, r.Count.Digest)
	case r.Filtered != nil:
		b = append(b, recFiltered)
		b = appendStr(b, r.Filtered.AdID)
		b = appendStr(b, r.Filtered.FilterID)
		b = binary.AppendVarint(b, r.Filtered.Minute)
		b = binary.AppendVarint(b, r.Filtered.Count)
		b = appendDigest(b, r.Filtered.Digest)
	case r.Top != nil:
		b = append(b, recTop)
		b = binary.AppendVarint(b, int64(r.Top.WindowSize))
		b = binary.AppendVarint(b, r.Top.Minute)
		b = binary.AppendUvarint(b, uint64(len(r.Top.Ads)))
		for _, a := range r.Top.Ads {
			b = appendStr(b, a.AdID)
			b = binary.AppendVarint(b, a.Count)
		}
	case r.TooLate != nil:
		b = appendTooLateRecord(append(b, recTooLate), r.TooLate)
	default:
		return nil, errors.New("transforms: empty record")
	}
	return b, nil
}

// appendDigest appends 0 for an unknown digest, else 1 and its 16 bytes.
func appendDigest(b []byte, d result.Digest) []byte {
	if !d.Known {
		return append(b, 0)
	}
	return d.AppendBytes(append(b, 1))
}

func (r *recReader) digest() result.Digest {
	if len(r.b) == 0 || r.b[0] > 1 || (r.b[0] == 1 && len(r.b) < 17) {
		r.err = errCorruptRecord
		return result.Digest{}
	}
	if r.b[0] == 0 {
		r.b = r.b[1:]
		return result.Digest{}
	}
	d := result.DigestFromBytes(r.b[1:17])
	r.b = r.b[17:]
	return d
}

type recReader struct {
	b   []byte
	err error
}

func (r *recReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errCorruptRecord
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *recReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errCorruptRecord
		return 0
	}
	r.b = r.b[n:]
	return v
}

// length reads a count of things still to come: never more than the bytes
// left, so corrupt input cannot make a huge allocation.
func (r *recReader) length() int {
	v := r.uvarint()
	if v > uint64(len(r.b)) {
		r.err = errCorruptRecord
		return 0
	}
	return int(v)
}

func (r *recReader) str() string {
	l, n := binary.Uvarint(r.b)
	if n <= 0 || l > uint64(len(r.b)-n) {
		r.err = errCorruptRecord
		return ""
	}
	s := string(r.b[n : n+int(l)])
	r.b = r.b[n+int(l):]
	return s
}

var errCorruptRecord = errors.New("transforms: corrupt record encoding")

func decodeRecord(b []byte) (result.Record, error) {
	if len(b) == 0 {
		return result.Record{}, errCorruptRecord
	}
	r := &recReader{b: b[1:]}
	var out result.Record
	switch b[0] {
	case recCount:
		c := &result.Count{AdID: r.str()}
		c.Minute, c.Count = r.varint(), r.varint()
		c.Digest = r.digest()
		out.Count = c
	case recFiltered:
		f := &result.FilteredCount{AdID: r.str(), FilterID: r.str()}
		f.Minute, f.Count = r.varint(), r.varint()
		f.Digest = r.digest()
		out.Filtered = f
	case recTop:
		t := &result.Top{WindowSize: int(r.varint()), Minute: r.varint()}
		n, k := binary.Uvarint(r.b)
		if k <= 0 || n > uint64(len(r.b)) {
			return result.Record{}, errCorruptRecord
		}
		r.b = r.b[k:]
		t.Ads = make([]result.AdCount, 0, n)
		for i := uint64(0); i < n && r.err == nil; i++ {
			t.Ads = append(t.Ads, result.AdCount{AdID: r.str(), Count: r.varint()})
		}
		out.Top = t
	case recTooLate:
		out.TooLate = r.tooLate()
	default:
		return result.Record{}, errCorruptRecord
	}
	if r.err != nil || len(r.b) != 0 {
		return result.Record{}, errCorruptRecord
	}
	return out, nil
}
