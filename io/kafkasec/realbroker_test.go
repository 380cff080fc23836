package kafkasec

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adclick/adclick/testing/testenv"
)

// failBound is how fast a misconfigured connection must fail against the
// real broker: well inside the commands' 15-s probe timeout, so the failure
// is the broker's answer, not the timeout.
const failBound = 10 * time.Second

// newTopic creates a topic of one partition, named for the test, on the
// secured broker through a client built with sec.
func newTopic(t *testing.T, broker string, sec Security) string {
	t.Helper()
	opts, err := sec.Opts()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(broker)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topic := fmt.Sprintf("kafkasec-%d-%d", os.Getpid(), time.Now().UnixNano())
	r, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, topic)
	if err == nil {
		err = r.Err
	}
	if err != nil {
		t.Fatalf("creating topic %s: %v", topic, err)
	}
	return topic
}

// The real broker, SASL_SSL: each mechanism connects, produces and reads.
func TestRealBrokerMechanisms(t *testing.T) {
	k := testenv.SecureKafka(t)
	broker := k.Brokers[0]
	for _, m := range Mechanisms {
		t.Run(m, func(t *testing.T) {
			sec := Security{TLS: TLS{Enabled: true, CAFile: k.CAFile}, SASL: SASL{Mechanism: m, Username: k.Username, PasswordFile: k.PasswordFile}}
			if err := Probe(context.Background(), k.Brokers, sec, 10*time.Second); err != nil {
				t.Fatalf("probe: %v", err)
			}
			roundTrip(t, broker, newTopic(t, broker, sec), sec)
		})
	}
}

// The real broker's answers to each misconfiguration come back fast as one
// message naming the broker and the cause.
func TestRealBrokerFailures(t *testing.T) {
	k := testenv.SecureKafka(t)
	broker := k.Brokers[0]
	other := testenv.NewTLSFiles(t)
	wrong := writeFile(t, "wrong", "not-the-password\n")
	tlsOK := TLS{Enabled: true, CAFile: k.CAFile}
	for _, tc := range []struct {
		name string
		sec  Security
		want string
	}{
		{"wrong password, SCRAM-SHA-512", Security{TLS: tlsOK, SASL: SASL{Mechanism: ScramSHA512, Username: k.Username, PasswordFile: wrong}},
			`SASL authentication failed for user "adclick" with SCRAM-SHA-512: wrong username or password`},
		{"wrong password, PLAIN", Security{TLS: tlsOK, SASL: SASL{Mechanism: Plain, Username: k.Username, PasswordFile: wrong}},
			`SASL authentication failed for user "adclick" with PLAIN`},
		{"unknown user", Security{TLS: tlsOK, SASL: SASL{Mechanism: ScramSHA256, Username: "nobody", PasswordFile: k.PasswordFile}},
			`SASL authentication failed for user "nobody" with SCRAM-SHA-256`},
		{"unknown CA", Security{TLS: TLS{Enabled: true, CAFile: other.CA}, SASL: SASL{Mechanism: ScramSHA512, Username: k.Username, PasswordFile: k.PasswordFile}},
			"certificate is not signed by a CA in " + other.CA},
		{"no CA", Security{TLS: TLS{Enabled: true}, SASL: SASL{Mechanism: ScramSHA512, Username: k.Username, PasswordFile: k.PasswordFile}},
			"not signed by a CA this system trusts"},
		{"plaintext client on the TLS port", Security{}, "requires TLS (--kafka-tls)"},
		{"TLS without SASL", Security{TLS: tlsOK}, "probably requires SASL"},
	} {
		t.Run(tc.name, func(t *testing.T) { probeFails(t, broker, tc.sec, tc.want, failBound) })
	}
}

// A TLS client on the plain broker's port.
func TestRealBrokerTLSOnPlaintextPort(t *testing.T) {
	brokers := testenv.Kafka(t)
	f := testenv.NewTLSFiles(t)
	probeFails(t, brokers[0], Security{TLS: TLS{Enabled: true, CAFile: f.CA}}, "plaintext listener", failBound)
}
