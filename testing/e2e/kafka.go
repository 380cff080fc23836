package e2e

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Admin wraps the Kafka admin calls the tests poll with.
type Admin struct {
	Adm *kadm.Client
}

// NewAdmin connects an admin client, closed when the test ends.
func NewAdmin(t testing.TB, brokers []string) *Admin {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &Admin{Adm: kadm.NewClient(cl)}
}

// Ends returns the end offset of every partition of topic.
func (k *Admin) Ends(ctx context.Context, topic string) (map[int32]int64, error) {
	lo, err := k.Adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	if err := lo.Error(); err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	lo.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}

// Committed returns group's committed offsets of topic.
func (k *Admin) Committed(ctx context.Context, group, topic string) (map[int32]int64, error) {
	or, err := k.Adm.FetchOffsets(ctx, group)
	if err != nil {
		return nil, err
	}
	if err := or.Error(); err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	for p, o := range or[topic] {
		out[p] = o.At
	}
	return out, nil
}

// Sum adds up offsets over partitions.
func Sum(m map[int32]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
