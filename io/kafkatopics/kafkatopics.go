// Package kafkatopics creates, or verifies, the Kafka topics adclick runs on:
// the raw click topic, the results topic and the dead-letter topic, with the
// partitions and settings the components rely on (`adclick topics`).
//
// It never changes an existing topic. A topic that exists with settings that
// would lose or misorder data is reported, with what is wrong and what is
// needed, and left to an operator: altering partitions or retention of a
// live topic is a decision with consequences (key-to-partition mapping,
// deleted data) that a start-up step should not take silently.
package kafkatopics

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Topic is what adclick needs of one topic.
type Topic struct {
	Name string
	// Partitions is the number to create, and the least an existing topic
	// may have (more is fine: consumers spread over what there is).
	Partitions int32
	// ReplicationFactor is the factor to create with; -1 takes the
	// broker's default. When positive it is also the least an existing
	// topic may have.
	ReplicationFactor int16
	// CleanupPolicy is required exactly ("delete": see the README for why
	// no adclick topic is compacted).
	CleanupPolicy string
	// Retention is the least time-based retention (retention.ms); an
	// existing topic may keep longer, or forever (-1).
	Retention time.Duration
	// TimestampType, when set, is required exactly (message.timestamp.type).
	TimestampType string
	// UnlimitedBytes requires retention.bytes = -1: size-based deletion
	// would drop records before Retention.
	UnlimitedBytes bool
}

// Validate reports a specification that cannot be created.
func (t Topic) Validate() error {
	switch {
	case t.Name == "":
		return errors.New("topic name is empty")
	case t.Partitions < 1:
		return fmt.Errorf("topic %s: partitions %d must be at least 1", t.Name, t.Partitions)
	case t.ReplicationFactor == 0 || t.ReplicationFactor < -1:
		return fmt.Errorf("topic %s: replication factor %d must be positive or -1 (the broker's default)", t.Name, t.ReplicationFactor)
	case t.CleanupPolicy == "":
		return fmt.Errorf("topic %s: no cleanup policy", t.Name)
	case t.Retention < time.Millisecond:
		return fmt.Errorf("topic %s: retention %v must be at least 1ms", t.Name, t.Retention)
	}
	return nil
}

// configs are the topic-level settings a new topic is created with.
func (t Topic) configs() map[string]*string {
	c := map[string]*string{
		"cleanup.policy": kadm.StringPtr(t.CleanupPolicy),
		"retention.ms":   kadm.StringPtr(strconv.FormatInt(t.Retention.Milliseconds(), 10)),
	}
	if t.TimestampType != "" {
		c["message.timestamp.type"] = kadm.StringPtr(t.TimestampType)
	}
	if t.UnlimitedBytes {
		c["retention.bytes"] = kadm.StringPtr("-1")
	}
	return c
}

// Describe is the settings of t in one line, for messages.
func (t Topic) Describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d partitions", t.Partitions)
	if t.ReplicationFactor > 0 {
		fmt.Fprintf(&b, ", replication factor %d", t.ReplicationFactor)
	}
	keys := make([]string, 0, 4)
	c := t.configs()
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, ", %s=%s", k, *c[k])
	}
	return b.String()
}

// Outcome is what Ensure did with one topic.
type Outcome string

// Outcomes.
const (
	Created   Outcome = "created"
	Unchanged Outcome = "unchanged" // existed with the needed settings
	Missing   Outcome = "missing"   // did not exist and was not created (verify only)
	Wrong     Outcome = "wrong"     // exists with settings adclick cannot run on
)

// Report is the result for one topic.
type Report struct {
	Topic    Topic
	Outcome  Outcome
	Problems []string // for Wrong: each setting that is wrong, and what is needed
}

// Ensure creates the topics that do not exist (unless verifyOnly) and checks
// the settings of those that do. It changes no existing topic. The error is
// for a failed request or a refused creation; a topic with wrong settings is
// a Report with Outcome Wrong.
func Ensure(ctx context.Context, adm *kadm.Client, topics []Topic, verifyOnly bool) ([]Report, error) {
	names := make([]string, len(topics))
	for i, t := range topics {
		if err := t.Validate(); err != nil {
			return nil, err
		}
		names[i] = t.Name
	}
	details, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("listing topics: %w", err)
	}
	reports := make([]Report, len(topics))
	var existing []int
	for i, t := range topics {
		reports[i].Topic = t
		d, ok := details[t.Name]
		if ok && d.Err == nil {
			existing = append(existing, i)
			continue
		}
		if ok && !errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			return nil, fmt.Errorf("describing topic %s: %w", t.Name, d.Err)
		}
		if verifyOnly {
			reports[i].Outcome = Missing
			continue
		}
		_, err := adm.CreateTopic(ctx, t.Partitions, t.ReplicationFactor, t.configs(), t.Name)
		switch {
		case err == nil:
			reports[i].Outcome = Created
		case errors.Is(err, kerr.TopicAlreadyExists):
			// Created meanwhile by someone else: check it like any
			// existing topic.
			existing = append(existing, i)
		default:
			return nil, fmt.Errorf("creating topic %s (%s): %w", t.Name, t.Describe(), err)
		}
	}
	var created []string
	for i, r := range reports {
		if r.Outcome == Created {
			created = append(created, topics[i].Name)
		}
	}
	// The next start-up step (the log watcher, the streaming job) fails
	// on a topic its broker does not know yet: return once every broker
	// asked has it.
	if err := WaitVisible(ctx, adm, created...); err != nil {
		return nil, err
	}
	if len(existing) == 0 {
		return reports, nil
	}
	check := make([]string, len(existing))
	for j, i := range existing {
		check[j] = topics[i].Name
	}
	// A topic just created elsewhere may not be known to every broker yet.
	if err := WaitVisible(ctx, adm, check...); err != nil {
		return nil, err
	}
	if details, err = adm.ListTopics(ctx, check...); err != nil {
		return nil, fmt.Errorf("listing topics: %w", err)
	}
	for _, i := range existing {
		t := topics[i]
		rc, err := describeConfigs(ctx, adm, t.Name)
		if err != nil {
			return nil, err
		}
		reports[i].Problems = problems(t, details[t.Name], rc)
		reports[i].Outcome = Unchanged
		if len(reports[i].Problems) > 0 {
			reports[i].Outcome = Wrong
		}
	}
	return reports, nil
}

// visibleTimeout bounds how long a created topic may take to appear in
// metadata and config answers (it is usually milliseconds).
const visibleTimeout = 30 * time.Second

// WaitVisible waits until the metadata answer lists every named topic with
// its partitions.
func WaitVisible(ctx context.Context, adm *kadm.Client, names ...string) error {
	if len(names) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, visibleTimeout)
	defer cancel()
	for {
		d, err := adm.ListTopics(ctx, names...)
		missing := ""
		if err == nil {
			for _, n := range names {
				if td, ok := d[n]; !ok || td.Err != nil || len(td.Partitions) == 0 {
					missing = n
					break
				}
			}
			if missing == "" {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("topic %s does not appear in the brokers' metadata", missing)
			}
			return fmt.Errorf("waiting for topics %s: %w (%w)", strings.Join(names, ", "), err, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// describeConfigs is one topic's configs, retried while the broker that
// answers does not know the topic yet.
func describeConfigs(ctx context.Context, adm *kadm.Client, name string) (kadm.ResourceConfig, error) {
	ctx, cancel := context.WithTimeout(ctx, visibleTimeout)
	defer cancel()
	for {
		configs, err := adm.DescribeTopicConfigs(ctx, name)
		var rc kadm.ResourceConfig
		if err == nil {
			rc, err = configs.On(name, nil)
			if err == nil {
				err = rc.Err
			}
		}
		if err == nil {
			return rc, nil
		}
		if !errors.Is(err, kerr.UnknownTopicOrPartition) {
			return rc, fmt.Errorf("describing the configs of topic %s: %w", name, err)
		}
		select {
		case <-ctx.Done():
			return rc, fmt.Errorf("describing the configs of topic %s: %w (%w)", name, err, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// problems lists what in an existing topic differs from what t needs.
func problems(t Topic, d kadm.TopicDetail, rc kadm.ResourceConfig) []string {
	var out []string
	if n := int32(len(d.Partitions)); n < t.Partitions {
		out = append(out, fmt.Sprintf("%d partitions, need at least %d (fewer limits how many consumers share the load)", n, t.Partitions))
	}
	if t.ReplicationFactor > 0 {
		if rf := d.Partitions.NumReplicas(); rf < int(t.ReplicationFactor) {
			out = append(out, fmt.Sprintf("replication factor %d, need at least %d", rf, t.ReplicationFactor))
		}
	}
	cfg := map[string]string{}
	for _, c := range rc.Configs {
		cfg[c.Key] = c.MaybeValue()
	}
	if v := cfg["cleanup.policy"]; v != t.CleanupPolicy {
		out = append(out, fmt.Sprintf("cleanup.policy=%s, need %s (compaction keeps only the newest record of a key; adclick's readers need every record)", v, t.CleanupPolicy))
	}
	want := t.Retention.Milliseconds()
	if v, ok := cfg["retention.ms"]; ok {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || (ms != -1 && ms < want) {
			out = append(out, fmt.Sprintf("retention.ms=%s (%s), need at least %d (%v) or -1", v, humanMs(ms, err), want, t.Retention))
		}
	} else {
		out = append(out, fmt.Sprintf("retention.ms is not reported, need at least %d (%v)", want, t.Retention))
	}
	if t.TimestampType != "" {
		if v := cfg["message.timestamp.type"]; v != t.TimestampType {
			out = append(out, fmt.Sprintf("message.timestamp.type=%s, need %s%s", v, t.TimestampType, timestampWhy(t.TimestampType)))
		}
	}
	if t.UnlimitedBytes {
		if v := cfg["retention.bytes"]; v != "-1" {
			out = append(out, fmt.Sprintf("retention.bytes=%s, need -1 (size-based deletion drops records before the time retention)", v))
		}
	}
	return out
}

// timestampWhy says why a topic needs its message.timestamp.type.
func timestampWhy(need string) string {
	if need != "LogAppendTime" {
		return ""
	}
	return " (time retention must count from when a record arrived: with CreateTime, records that carry old event times" +
		" as timestamps — a backfilled log, published by a log watcher from before the event-time header — can be deleted" +
		" before they are read; the change is safe once every log watcher is upgraded: kafka-configs --alter" +
		" --entity-type topics --entity-name <topic> --add-config message.timestamp.type=LogAppendTime)"
}

func humanMs(ms int64, err error) string {
	if err != nil {
		return "not a number"
	}
	return (time.Duration(ms) * time.Millisecond).String()
}
