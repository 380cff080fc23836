package kafkaio

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/graphx"
	pipepb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/pipeline_v1"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/adclick/adclick/io/kafkasec"
	"github.com/adclick/adclick/testing/testenv"
)

// secured is a broker that accepts only TLS and SASL clients.
type secured struct {
	name    string
	brokers []string
	sec     kafkasec.Security
}

func securedBackends(t *testing.T) []secured {
	f := testenv.NewTLSFiles(t)
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("kafkaio-s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(f.ServerConfig(t, false)),
		kfake.EnableSASL(), kfake.Superuser(kafkasec.ScramSHA512, "adclick", "kafkaio-s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	k := testenv.SecureKafka(t)
	return []secured{
		{"kfake", c.ListenAddrs(), kafkasec.Security{TLS: kafkasec.TLS{Enabled: true, CAFile: f.CA},
			SASL: kafkasec.SASL{Mechanism: kafkasec.ScramSHA512, Username: "adclick", PasswordFile: pw}}},
		{"kafka", k.Brokers, kafkasec.Security{TLS: kafkasec.TLS{Enabled: true, CAFile: k.CAFile},
			SASL: kafkasec.SASL{Mechanism: kafkasec.ScramSHA512, Username: k.Username, PasswordFile: k.PasswordFile}}},
	}
}

// client is a test client of the secured broker, closed with the test.
func (b secured) client(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	so, err := b.sec.Opts()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt{kgo.SeedBrokers(b.brokers...)}, so...), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func (b secured) topic(t *testing.T, partitions int32) string {
	t.Helper()
	name := fmt.Sprintf("kafkaio-secured-%d-%d", os.Getpid(), topicSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := kadm.NewClient(b.client(t)).CreateTopic(ctx, partitions, 1, nil, name)
	if err == nil {
		err = r.Err
	}
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// A pipeline reads and writes a secured broker: the Security in the DoFns
// reaches the workers (prism runs them after decoding the pipeline, as a
// remote runner would), which read the password file themselves.
func TestSecuredReadWrite(t *testing.T) {
	for _, b := range securedBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			in, out := b.topic(t, 2), b.topic(t, 2)
			var want []any
			var recs []*kgo.Record
			for i := range 200 {
				v := fmt.Sprintf("ad-%d|%d", i%7, i)
				want = append(want, v)
				recs = append(recs, &kgo.Record{Topic: in, Value: []byte(v), Timestamp: time.Now()})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := b.client(t).ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			p, s := beam.NewPipelineWithRoot()
			lines := beam.ParDo(s, flattenLines, Read(s, ReadConfig{Brokers: b.brokers, Security: b.sec, Topic: in, EndOffsets: true}))
			passert.EqualsList(s, lines, want)
			Write(s, WriteConfig{Brokers: b.brokers, Security: b.sec, Topic: out}, keyByLine, lines)
			if err := ptest.Run(p); err != nil {
				t.Fatal(err)
			}
			cl := b.client(t, kgo.ConsumeTopics(out), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			n := 0
			for n < len(want) && ctx.Err() == nil {
				n += len(cl.PollFetches(ctx).Records())
			}
			if n != len(want) {
				t.Fatalf("%d of %d records written", n, len(want))
			}
		})
	}
}

// The pipeline sent to a runner holds the password's file, never the
// password.
func TestPipelineHoldsNoPassword(t *testing.T) {
	const password = "pipeline-must-not-hold-this"
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sec := kafkasec.Security{TLS: kafkasec.TLS{Enabled: true},
		SASL: kafkasec.SASL{Mechanism: kafkasec.ScramSHA512, Username: "adclick", PasswordFile: pw}}
	p, s := beam.NewPipelineWithRoot()
	lines := beam.ParDo(s, flattenLines, Read(s, ReadConfig{Brokers: []string{"kafka:9093"}, Security: sec, Topic: "raw"}))
	Write(s, WriteConfig{Brokers: []string{"kafka:9093"}, Security: sec, Topic: "out"}, keyByLine, lines)
	edges, _, err := p.Build()
	if err != nil {
		t.Fatal(err)
	}
	pb, err := graphx.Marshal(edges, &graphx.Options{Environment: &pipepb.Environment{Urn: "beam:env:loopback:v1"}})
	if err != nil {
		t.Fatal(err)
	}
	all, err := proto.Marshal(pb)
	if err != nil {
		t.Fatal(err)
	}
	// The Go SDK's DoFn payloads are base64 text: decode them to look inside.
	var payloads [][]byte
	for _, tr := range pb.GetComponents().GetTransforms() {
		var pardo pipepb.ParDoPayload
		if tr.GetSpec().GetUrn() != "beam:transform:pardo:v1" || proto.Unmarshal(tr.GetSpec().GetPayload(), &pardo) != nil {
			continue
		}
		if raw, err := base64.StdEncoding.DecodeString(string(pardo.GetDoFn().GetPayload())); err == nil {
			payloads = append(payloads, raw)
		}
	}
	withFile := 0
	for _, raw := range append(payloads, all) {
		if bytes.Contains(raw, []byte(password)) {
			t.Fatal("the pipeline holds the password")
		}
		if bytes.Contains(raw, []byte(pw)) {
			withFile++
		}
	}
	// The reader's two DoFns and the writer's carry the file's path: the
	// search above looked where the Security is.
	if withFile < 3 {
		t.Fatalf("%d DoFn payloads name the password file, want at least 3 (of %d)", withFile, len(payloads))
	}
}
