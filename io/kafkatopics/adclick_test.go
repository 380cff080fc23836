package kafkatopics

import (
	"testing"
	"time"
)

// TestSetTopics pins the settings the components rely on: the raw topic
// has the broker's timestamps and never deletes by size, no
// topic is compacted, and every specification can be created.
func TestSetTopics(t *testing.T) {
	s := Set{Raw: "r", Results: "s", DeadLetters: "d", Partitions: 3, ReplicationFactor: -1,
		RawRetention: 3 * time.Hour, ResultsRetention: 4 * time.Hour, DeadLetterRetention: 5 * time.Hour}
	ts := s.Topics()
	if len(ts) != 3 || ts[0].Name != "r" || ts[1].Name != "s" || ts[2].Name != "d" {
		t.Fatalf("topics %+v: want r, s, d in that order", ts)
	}
	for i, want := range []time.Duration{3 * time.Hour, 4 * time.Hour, 5 * time.Hour} {
		tp := ts[i]
		if err := tp.Validate(); err != nil {
			t.Error(err)
		}
		if tp.CleanupPolicy != "delete" || tp.Partitions != 3 || tp.ReplicationFactor != -1 || tp.Retention != want {
			t.Errorf("%s: %s; want delete, 3 partitions, the broker's replication factor, retention %v", tp.Name, tp.Describe(), want)
		}
	}
	if ts[0].TimestampType != "LogAppendTime" || !ts[0].UnlimitedBytes {
		t.Errorf("raw topic %s: want LogAppendTime timestamps (retention from publishing, not event time) and no size limit", ts[0].Describe())
	}
	if !ts[1].UnlimitedBytes {
		t.Errorf("results topic %s: want no size limit", ts[1].Describe())
	}
}
