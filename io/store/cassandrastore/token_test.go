package cassandrastore

import (
	"math"
	"testing"
)

func TestSplitFullRing(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7, 64, 1000} {
		rs := FullRing.Split(n)
		if len(rs) != n {
			t.Fatalf("Split(%d) gave %d ranges", n, len(rs))
		}
		if rs[0].Lo != MinToken || rs[len(rs)-1].Hi != MaxToken {
			t.Errorf("Split(%d) does not span the ring: %v .. %v", n, rs[0], rs[len(rs)-1])
		}
		for i := 1; i < len(rs); i++ {
			if rs[i].Lo != rs[i-1].Hi+1 || rs[i].Lo > rs[i].Hi {
				t.Fatalf("Split(%d): range %d %v does not follow %v", n, i, rs[i], rs[i-1])
			}
		}
	}
	// A tiny range splits into at most its number of tokens.
	rs := TokenRange{5, 7}.Split(10)
	if len(rs) != 3 || rs[0] != (TokenRange{5, 5}) || rs[2] != (TokenRange{7, 7}) {
		t.Errorf("TokenRange{5,7}.Split(10) = %v", rs)
	}
	if got := (TokenRange{math.MaxInt64 - 1, math.MaxInt64}).Split(2); len(got) != 2 || got[1].Hi != math.MaxInt64 {
		t.Errorf("split at the top of the ring: %v", got)
	}
	r, err := decodeRange(FullRing.encode())
	if err != nil || r != FullRing {
		t.Errorf("encode/decode: %v %v", r, err)
	}
	if _, err := decodeRange([]byte{1, 2}); err == nil {
		t.Error("decodeRange accepted 2 bytes")
	}
}

func TestSchemaStatements(t *testing.T) {
	st, err := Schema("ks1", 3, 3600e9)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 13 {
		t.Fatalf("schema has %d statements, want 13: %q", len(st), st)
	}
	for _, s := range st {
		if len(s) == 0 || s[len(s)-1] == ';' {
			t.Errorf("bad statement %q", s)
		}
	}
	if _, err := Schema("ks; DROP", 1, 3600e9); err == nil {
		t.Error("Schema accepted an injected keyspace name")
	}
}
