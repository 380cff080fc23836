package storeio

import (
	"reflect"
	"testing"
)

func set(n int) ShardSet {
	var r ShardSet
	for i := 0; i < n; i++ {
		r.Shards = append(r.Shards, ShardSpec{FromNS: int64(i), ToNS: int64(i + 1), Token: []byte{byte(i), 0xff}})
	}
	return r
}

func TestShardSetCoder(t *testing.T) {
	for _, r := range []ShardSet{{}, set(1), set(70)} {
		got, err := decodeShardSet(encodeShardSet(r))
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Shards) == 0 && len(got.Shards) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("round trip of %d shards differs", len(r.Shards))
		}
	}
	for _, b := range [][]byte{nil, {5}, {1, 2}, encodeShardSet(set(3))[:7]} {
		if _, err := decodeShardSet(b); err == nil {
			t.Errorf("decodeShardSet(%v) accepted corrupt input", b)
		}
	}
}

func TestShardTracker(t *testing.T) {
	tr := newShardTracker(set(10))
	if !tr.TryClaim(0) || !tr.TryClaim(1) {
		t.Fatal("claims 0, 1 refused")
	}
	// Split half of the 8 unclaimed shards off.
	p, r, err := tr.TrySplit(0.5)
	if err != nil || r == nil {
		t.Fatalf("TrySplit(0.5) = %v, %v", r, err)
	}
	if got, want := len(p.(ShardSet).Shards), 6; got != want {
		t.Errorf("primary has %d shards, want %d", got, want)
	}
	if got := r.(ShardSet).Shards[0].FromNS; got != 6 {
		t.Errorf("residual starts at shard %d, want 6", got)
	}
	// Checkpoint (fraction 0): the primary keeps only what was claimed.
	p, r, _ = tr.TrySplit(0)
	if len(p.(ShardSet).Shards) != 2 || len(r.(ShardSet).Shards) != 4 {
		t.Errorf("checkpoint split: %d + %d shards", len(p.(ShardSet).Shards), len(r.(ShardSet).Shards))
	}
	if tr.TryClaim(2) || !tr.IsDone() || tr.GetError() != nil {
		t.Errorf("after the checkpoint: claim allowed or not done (err %v)", tr.GetError())
	}
	// Out-of-order claims are errors.
	tr = newShardTracker(set(3))
	if tr.TryClaim(1) || tr.GetError() == nil {
		t.Error("claim of shard 1 before 0 accepted")
	}
	// Nothing left to split.
	tr = newShardTracker(set(1))
	tr.TryClaim(0)
	if _, r, _ := tr.TrySplit(0.5); r != nil {
		t.Errorf("split of a fully claimed set gave residual %v", r)
	}
	if done, rem := tr.GetProgress(); done != 1 || rem != 0 {
		t.Errorf("progress = %v, %v", done, rem)
	}
}
