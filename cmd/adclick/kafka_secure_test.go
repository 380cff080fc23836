package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adclick/adclick/io/kafkasec"
	"github.com/adclick/adclick/testing/clickgen"
	"github.com/adclick/adclick/testing/e2e"
	"github.com/adclick/adclick/testing/reference"
	"github.com/adclick/adclick/testing/testenv"
)

// secureKafkaFlags are the flags that connect a command to the secured
// broker as its user, over TLS, with mechanism.
func secureKafkaFlags(k testenv.SecureKafkaServer, mechanism string) []string {
	return []string{"--kafka-brokers", strings.Join(k.Brokers, ","), "--kafka-tls", "--kafka-tls-ca-file", k.CAFile,
		"--kafka-sasl-mechanism", mechanism, "--kafka-sasl-username", k.Username, "--kafka-sasl-password-file", k.PasswordFile}
}

// secureKafkaOpts are the test's own client options for the secured broker.
func secureKafkaOpts(t *testing.T, k testenv.SecureKafkaServer) []kgo.Opt {
	t.Helper()
	opts, err := kafkasec.Security{TLS: kafkasec.TLS{Enabled: true, CAFile: k.CAFile},
		SASL: kafkasec.SASL{Mechanism: kafkasec.ScramSHA512, Username: k.Username, PasswordFile: k.PasswordFile}}.Opts()
	if err != nil {
		t.Fatal(err)
	}
	return opts
}

// secureAdmin is e2e's admin over a client of the secured broker.
func secureAdmin(t *testing.T, k testenv.SecureKafkaServer) *e2e.Admin {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(k.Brokers...)}, secureKafkaOpts(t, k)...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &e2e.Admin{Adm: kadm.NewClient(cl)}
}

// freeLocalAddr is a 127.0.0.1 address nothing listens on now.
func freeLocalAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestSecureKafkaEndToEnd: the topics command, the log watcher, the
// streaming job and the DB writer, each a process of its own, connect to
// the real Kafka over SASL_SSL with SCRAM-SHA-512 only (the broker has no
// other listener): the store ends equal to a recount of the log minus the
// too-late clicks, and neither their output nor their /metrics shows the
// password.
func TestSecureKafkaEndToEnd(t *testing.T) {
	k := testenv.SecureKafka(t)
	password := k.Password(t)
	sec := secureKafkaFlags(k, kafkasec.ScramSHA512)
	id := fmt.Sprintf("secure-%d-%d", os.Getpid(), time.Now().UnixNano())
	raw, res, dead := id+"-raw", id+"-results", id+"-dead"
	var errb bytes.Buffer
	if code := run(context.Background(), append([]string{"topics", "--raw-topic", raw, "--results-topic", res,
		"--dead-letter-topic", dead, "--partitions", "2"}, sec...), genEnv(io.Discard, &errb, nil)); code != 0 {
		t.Fatalf("topics: exit %d: %s", code, errb.String())
	}

	// 10 minutes of clicks three hours ago: a backlog whose windows the idle
	// rule closes soon after it is read.
	n, ws, topN := 4000, []int{1, 5}, 20
	start := time.Now().Add(-3 * time.Hour).Truncate(time.Minute)
	lines, truth := genCrashLines(t, n, clickgen.Config{Seed: 48, Ads: 100, Start: start, EventRate: float64(n) / 600,
		DupShare: 0.1, LateShare: 0.05, TooLateShare: 0.02, MalformedShare: 0.02})
	tooLate := map[string]bool{}
	for _, e := range truth.TooLate {
		tooLate[e] = true
	}
	want := reference.Recount(lines, ws, topN, tooLate)
	if len(truth.TooLate) == 0 || want.Dups == 0 || want.Rejected == 0 {
		t.Fatalf("the log lacks too-late, duplicate or malformed lines")
	}
	dir := t.TempDir()
	logPath, state, pebbleDir := filepath.Join(dir, "clicks.log"), filepath.Join(dir, "positions.json"), filepath.Join(dir, "pebble")
	size := writeLog(t, logPath, lines)

	metricsAt := map[string]string{}
	proc := func(name string, args ...string) *e2e.Proc {
		metricsAt[name] = freeLocalAddr(t)
		args = append(append(args, "--metrics-addr", metricsAt[name]), sec...)
		return e2e.NewProc(t, dir, name, crashChild, append([]string{name}, args...)...)
	}
	lw := proc("logwatcher", "--files", logPath, "--state", state, "--raw-topic", raw)
	st := proc("stream", "--raw-topic", raw, "--results-topic", res, "--dead-letter-topic", dead, "--group", id+"-stream",
		"--idle-timeout", "3s", "--watermark-delay", "1s", "--window-sizes", "1,5", "--top-n", strconv.Itoa(topN))
	dw := proc("dbwriter", "--kind", "results", "--results-topic", res, "--group", id+"-dbwriter", "--store", "pebble", "--pebble-dir", pebbleDir)
	all := []*e2e.Proc{lw, st, dw}
	t.Cleanup(func() {
		for _, p := range all {
			if p.Running() {
				p.Kill()
			}
			if t.Failed() {
				t.Logf("%s log (tail):\n%s", p.Name, e2e.Tail(p.LogPath, 20000))
			}
		}
	})

	t0 := time.Now()
	lw.Start()
	for deadline := time.Now().Add(90 * time.Second); !positionAt(state, size); time.Sleep(100 * time.Millisecond) {
		lw.Alive()
		if time.Now().After(deadline) {
			t.Fatalf("the log watcher did not publish the log in 90 s")
		}
	}
	t.Logf("log of %d lines published over SASL_SSL in %v", n, time.Since(t0).Round(100*time.Millisecond))
	st.Start()
	dw.Start()
	settleSecure(t, k, all, res, id+"-dbwriter", want)

	for _, p := range all {
		checkMetricsHoldNo(t, p.Name, metricsAt[p.Name], password)
	}
	for _, p := range all {
		p.Interrupt(60 * time.Second)
	}
	if got := countTopic(t, secureAdmin(t, k), dead); got != int64(want.Rejected) {
		t.Errorf("%d dead letters, want %d", got, want.Rejected)
	}
	// Every minute a stored row can have (too-late clicks are up to an hour
	// behind), whole minutes as the store wants.
	from, to := start.Add(-2*time.Hour).Truncate(time.Hour).Unix(), time.Now().Add(2*time.Hour).Truncate(time.Hour).Unix()
	reference.Compare(t, readPebble(t, pebbleDir, from, to, ws), want)
	for _, p := range all {
		b, err := os.ReadFile(p.LogPath)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(password)) {
			t.Errorf("%s's output shows the password", p.Name)
		}
		if !bytes.Contains(b, []byte(`security="TLS (CA `+k.CAFile+`), SASL SCRAM-SHA-512 as \"adclick\""`)) {
			t.Errorf("%s's output does not say it connected with TLS and SCRAM-SHA-512", p.Name)
		}
	}
}

// settleSecure waits until the DB writer has committed the end of the
// results topic and the topic's last value per key equals want (what the
// writer stores), or the topic stays quiet for 40 s.
func settleSecure(t *testing.T, k testenv.SecureKafkaServer, procs []*e2e.Proc, topic, group string, want reference.Results) {
	t.Helper()
	adm := secureAdmin(t, k)
	rt := e2e.NewResultsTail(t, k.Brokers, topic, secureKafkaOpts(t, k)...)
	var lastEnds map[int32]int64
	quietSince, t0 := time.Now(), time.Now()
	for deadline := time.Now().Add(150 * time.Second); ; {
		for _, p := range procs {
			p.Alive()
		}
		rt.Poll(t, 500*time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ends, err1 := adm.Ends(ctx, topic)
		committed, err2 := adm.Committed(ctx, group, topic)
		cancel()
		if err1 != nil || err2 != nil {
			t.Logf("settle: %v %v", err1, err2)
			continue
		}
		if fmt.Sprint(ends) != fmt.Sprint(lastEnds) {
			lastEnds, quietSince = ends, time.Now()
		}
		caughtUp := e2e.Sum(ends) > 0
		for p, e := range ends {
			caughtUp = caughtUp && committed[p] == e
		}
		matched, quiet := e2e.ResultsEqual(rt.Results(), want), time.Since(quietSince)
		if caughtUp && (matched && quiet >= 3*time.Second || quiet >= 40*time.Second) {
			t.Logf("settled in %v: %d result records, equal to the recount: %v", time.Since(t0).Round(100*time.Millisecond), e2e.Sum(ends), matched)
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("results did not settle in 150 s (caught up %v, equal to the recount %v)", caughtUp, matched)
			return
		}
	}
}

// checkMetricsHoldNo scrapes a command's /metrics and fails if it shows
// secret.
func checkMetricsHoldNo(t *testing.T, name, addr, secret string) {
	t.Helper()
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Errorf("%s /metrics: %v", name, err)
		return
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK || !bytes.Contains(b, []byte("adclick_")) {
		t.Errorf("%s /metrics: %s, %d bytes, %v", res.Status, name, len(b), err)
	}
	if bytes.Contains(b, []byte(secret)) {
		t.Errorf("%s /metrics shows the password", name)
	}
}

// TestSecureKafkaFailsFast: every command that talks to Kafka, given a wrong
// password, a CA that did not sign the broker's certificate, no CA, or no
// TLS at all, exits 1 within seconds with one message naming the broker and
// the cause, and without the password it was given.
func TestSecureKafkaFailsFast(t *testing.T) {
	k := testenv.SecureKafka(t)
	broker := k.Brokers[0]
	dir := t.TempDir()
	wrongPassword := fmt.Sprintf("wrong-%d", time.Now().UnixNano())
	wrongFile := passwordFile(t, wrongPassword)
	otherCA := testenv.NewTLSFiles(t).CA
	login := []string{"--kafka-sasl-mechanism", "SCRAM-SHA-512", "--kafka-sasl-username", k.Username}
	withLogin := func(flags ...string) []string {
		return append(append([]string{"--kafka-brokers", broker}, flags...), login...)
	}
	faults := []struct {
		name  string
		flags []string
		want  string
	}{
		{"wrong password", withLogin("--kafka-tls", "--kafka-tls-ca-file", k.CAFile, "--kafka-sasl-password-file", wrongFile),
			`SASL authentication failed for user "adclick" with SCRAM-SHA-512: wrong username or password`},
		{"unknown CA", withLogin("--kafka-tls", "--kafka-tls-ca-file", otherCA, "--kafka-sasl-password-file", k.PasswordFile),
			"TLS: the broker's certificate is not signed by a CA in " + otherCA},
		{"no CA", withLogin("--kafka-tls", "--kafka-sasl-password-file", k.PasswordFile),
			"TLS: the broker's certificate is not signed by a CA this system trusts"},
		{"plaintext client on the TLS port", []string{"--kafka-brokers", broker}, "the broker answered with TLS: this listener requires TLS (--kafka-tls)"},
	}
	commands := map[string][]string{
		"topics":     {"topics", "--verify-only"},
		"logwatcher": {"logwatcher", "--files", filepath.Join(dir, "*.log"), "--state", filepath.Join(dir, "state.json")},
		"stream":     {"stream"},
		"dbwriter":   {"dbwriter", "--store", "pebble", "--pebble-dir", filepath.Join(dir, "pebble")},
	}
	for _, f := range faults {
		for name, cmd := range commands {
			t.Run(f.name+"/"+name, func(t *testing.T) {
				var errb syncWriter
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				t0 := time.Now()
				code := run(ctx, append(append([]string{}, cmd...), f.flags...), genEnv(io.Discard, &errb, nil))
				took, out := time.Since(t0), errb.String()
				t.Logf("exit %d after %v: %s", code, took.Round(time.Millisecond), out)
				if code != 1 {
					t.Errorf("exit %d, want 1", code)
				}
				if took > 15*time.Second {
					t.Errorf("took %v: not fast", took)
				}
				msg := "adclick " + name + ": kafka broker " + broker + ": " + f.want
				if strings.Count(out, msg) != 1 || strings.Count(out, broker) != 1 {
					t.Errorf("want the message %q once and nothing else naming the broker", msg)
				}
				if strings.Contains(out, wrongPassword) || strings.Contains(out, k.Password(t)) {
					t.Error("the output shows a password")
				}
			})
		}
	}
}

// TestSecureKafkaPasswordSources: the password comes from its file or from
// ADCLICK_KAFKA_SASL_PASSWORD, for each mechanism; without either the
// command refuses to start.
func TestSecureKafkaPasswordSources(t *testing.T) {
	k := testenv.SecureKafka(t)
	id := fmt.Sprintf("secure-pw-%d-%d", os.Getpid(), time.Now().UnixNano())
	topicFlags := []string{"--raw-topic", id + "-raw", "--results-topic", id + "-results", "--dead-letter-topic", id + "-dead", "--partitions", "1"}
	osEnv := func(errb io.Writer) *cliEnv {
		return &cliEnv{stdin: strings.NewReader(""), stdout: io.Discard, stderr: errb, getenv: os.Getenv}
	}
	base := []string{"--kafka-brokers", strings.Join(k.Brokers, ","), "--kafka-tls", "--kafka-tls-ca-file", k.CAFile, "--kafka-sasl-username", k.Username}
	t.Run("no password", func(t *testing.T) {
		t.Setenv(envKafkaPassword, "")
		var errb bytes.Buffer
		code := run(context.Background(), append(append([]string{"topics"}, topicFlags...), append(base, "--kafka-sasl-mechanism", "PLAIN")...), osEnv(&errb))
		if code != 2 || !strings.Contains(errb.String(), "needs a password: --kafka-sasl-password-file, or the environment variable "+envKafkaPassword) {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
	})
	t.Setenv(envKafkaPassword, k.Password(t))
	for i, m := range kafkasec.Mechanisms {
		args := append(append([]string{"topics"}, topicFlags...), append(base, "--kafka-sasl-mechanism", m)...)
		if i > 0 {
			args = append(args, "--verify-only") // the first created them
		}
		t.Run(m+" from the environment", func(t *testing.T) {
			var errb bytes.Buffer
			if code := run(context.Background(), args, osEnv(&errb)); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
		})
		t.Run(m+" from a file", func(t *testing.T) {
			var errb bytes.Buffer
			args := append(append(args, "--kafka-sasl-password-file", k.PasswordFile), "--verify-only")
			if code := run(context.Background(), args, genEnv(io.Discard, &errb, nil)); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
		})
	}
}
