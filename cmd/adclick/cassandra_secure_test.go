package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/kafkaio"
	"github.com/adclick/adclick/io/store/backend"
	"github.com/adclick/adclick/io/store/cassandrastore"
	"github.com/adclick/adclick/testing/clickgen"
	"github.com/adclick/adclick/testing/e2e"
	"github.com/adclick/adclick/testing/reference"
	"github.com/adclick/adclick/testing/testenv"
)

// secureStoreArgs are the store flags of a command on the secured test
// node, logged in as its role over TLS; the password comes separately.
func secureStoreArgs(n testenv.SecureNode, ks string) []string {
	return []string{"--store", "cassandra", "--cassandra-hosts", strings.Join(n.Hosts, ","), "--keyspace", ks,
		"--cassandra-username", n.Username, "--cassandra-tls-ca-file", n.CAFile}
}

// passwordFile writes pw into a file of its own (mode 600).
func passwordFile(t *testing.T, pw string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cassandra-password")
	if err := os.WriteFile(p, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// migrateSecure applies the schema to ks on the secured node with the
// password from the environment, as `adclick migrate` does in production.
func migrateSecure(t *testing.T, n testenv.SecureNode, ks string) string {
	t.Helper()
	var errb syncWriter
	args := append([]string{"migrate"}, secureStoreArgs(n, ks)[2:]...)
	if code := run(context.Background(), args, serveEnv(&errb, map[string]string{backend.EnvCassandraPassword: n.Password})); code != 0 {
		t.Fatalf("migrate: exit %d: %s", code, errb.String())
	}
	return errb.String()
}

// TestSecureCassandraEndToEnd runs the commands that talk to Cassandra
// against the secured node (PasswordAuthenticator, client encryption
// required), each logged in as an ordinary role over verified TLS, with the
// password from the environment or a file: migrate; the raw and the results
// DB writers as processes of their own, reading a generated log's raw lines
// and its recount from Kafka; replay (its pipeline's workers read the
// password file themselves: the job carries no password); serve. The store
// after the writers and after the replay, and what serve answers, are
// exactly the reference recount; no output, log or /metrics holds the
// password.
func TestSecureCassandraEndToEnd(t *testing.T) {
	brokers := testenv.Kafka(t)
	n, ks := testenv.SecureCassandraKeyspace(t, "adclick_cmdsec")
	pwFile := passwordFile(t, n.Password)
	outputs := map[string]string{"migrate": migrateSecure(t, n, ks)}
	ws, topN := []int{1, 5}, 10

	start := time.Now().Add(-3 * time.Hour).Truncate(time.Hour)
	lines, _ := genCrashLines(t, 3000, clickgen.Config{Seed: 81, Ads: 40, Start: start, EventRate: 3000.0 / (20 * 60),
		DupShare: 0.1, LateShare: 0.05, MalformedShare: 0.02})
	want := reference.Recount(lines, ws, topN, nil)
	from, to := minuteSpan(t, want)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "clicks.jsonl")
	writeLog(t, logPath, lines)

	id := fmt.Sprintf("sec-%d-%d", os.Getpid(), time.Now().UnixNano())
	raw, res := id+"-raw", id+"-results"
	for _, topic := range []string{raw, res} {
		if err := kafkaio.EnsureTopic(context.Background(), brokers, topic, 2); err != nil {
			t.Fatal(err)
		}
	}
	e2e.ProduceLines(t, brokers, raw, lines)
	produceRecount(t, brokers, res, logPath, ws, topN)

	// The DB writers: the raw one with the password in its environment, the
	// results one with a password file.
	withPassword := func(args []string) *exec.Cmd {
		cmd := crashChild(args)
		cmd.Env = append(cmd.Env, backend.EnvCassandraPassword+"="+n.Password)
		return cmd
	}
	kafkaArgs := []string{"--kafka-brokers", strings.Join(brokers, ","), "--raw-topic", raw, "--results-topic", res}
	rawW := e2e.NewProc(t, dir, "dbwriter-raw", withPassword, append(append([]string{"dbwriter", "--kind", "raw", "--group", id + "-raw"},
		kafkaArgs...), secureStoreArgs(n, ks)...)...)
	resW := e2e.NewProc(t, dir, "dbwriter-results", crashChild, append(append([]string{"dbwriter", "--kind", "results", "--group", id + "-results",
		"--cassandra-password-file", pwFile}, kafkaArgs...), secureStoreArgs(n, ks)...)...)
	rawW.Start()
	resW.Start()
	adm := e2e.NewAdmin(t, brokers)
	awaitCommitted(t, adm, rawW, id+"-raw", raw)
	awaitCommitted(t, adm, resW, id+"-results", res)
	rawW.Interrupt(30 * time.Second)
	resW.Interrupt(30 * time.Second)
	outputs["dbwriter raw"], outputs["dbwriter results"] = e2e.Tail(rawW.LogPath, 1<<20), e2e.Tail(resW.LogPath, 1<<20)

	st := openSecure(t, n, ks)
	topTo := to + int64(60*(ws[len(ws)-1]-1)) // the last window end of the recount
	reference.Compare(t, e2e.ReadStore(t, st, from, topTo+60, ws), want)

	// Replay the whole span: a new generation, recounted from the raw
	// clicks the raw writer stored, must be the recount again.
	env, out, errb := testEnv("")
	env.getenv = func(k string) string {
		return map[string]string{"ADCLICK_CASSANDRA_PASSWORD_FILE": pwFile}[k]
	}
	args := append([]string{"replay", "--from", time.Unix(from, 0).UTC().Format(time.RFC3339), "--to", time.Unix(to, 0).UTC().Format(time.RFC3339),
		"--window-sizes", "1,5", "--top-n", strconv.Itoa(topN)}, secureStoreArgs(n, ks)...)
	if code := run(context.Background(), args, env); code != 0 {
		t.Fatalf("replay: exit %d: %s", code, errb)
	}
	outputs["replay"] = out.String() + errb.String()
	var rep struct{ Generation int64 }
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || rep.Generation <= 0 {
		t.Fatalf("replay printed %q (%v): want a new generation", out, err)
	}
	reference.Compare(t, e2e.ReadStore(t, st, from, topTo+60, ws), want)

	outputs["serve"] = checkSecureServe(t, n, ks, want, from, to)
	for name, o := range outputs {
		if strings.Contains(o, n.Password) {
			t.Errorf("%s printed the password", name)
		}
	}
}

// minuteSpan returns the minutes [from, to) the recount's counts cover.
func minuteSpan(t *testing.T, r reference.Results) (from, to int64) {
	t.Helper()
	for k := range r.Counts {
		m, err := strconv.ParseInt(strings.SplitN(k, "/", 2)[0], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		if from == 0 || m < from {
			from = m
		}
		to = max(to, m+60)
	}
	if from == 0 {
		t.Fatal("the recount counts nothing")
	}
	return from, to
}

// produceRecount publishes `adclick aggregate`'s records of the log to the
// results topic, keyed as the streaming job keys them.
func produceRecount(t *testing.T, brokers []string, topic, logPath string, ws []int, topN int) {
	t.Helper()
	env, out, errb := testEnv("")
	if code := run(context.Background(), []string{"aggregate", "--input", logPath, "--window-sizes", fmt.Sprint(ws[0]) + "," + fmt.Sprint(ws[1]),
		"--top-n", strconv.Itoa(topN)}, env); code != 0 {
		t.Fatalf("aggregate: exit %d: %s", code, errb)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for _, l := range bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n")) {
		var r result.Record
		if err := json.Unmarshal(l, &r); err != nil {
			t.Fatalf("aggregate printed %q: %v", l, err)
		}
		recs = append(recs, &kgo.Record{Key: []byte(r.Key()), Value: l})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// awaitCommitted waits until the DB writer's group has committed the end of
// topic: everything it read is in the store.
func awaitCommitted(t *testing.T, adm *e2e.Admin, p *e2e.Proc, group, topic string) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		p.Alive()
		ends, err1 := adm.Ends(context.Background(), topic)
		committed, err2 := adm.Committed(context.Background(), group, topic)
		done := err1 == nil && err2 == nil && e2e.Sum(ends) > 0
		for part, e := range ends {
			done = done && committed[part] == e
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not commit the end of %s within 2 minutes (ends %v, committed %v; %v %v):\n%s",
				p.Name, topic, ends, committed, err1, err2, e2e.Tail(p.LogPath, 4000))
		}
	}
}

// openSecure opens the keyspace as the commands do.
func openSecure(t *testing.T, n testenv.SecureNode, ks string) *cassandrastore.Store {
	t.Helper()
	st, err := cassandrastore.Open(context.Background(), cassandrastore.Options{Hosts: n.Hosts, Keyspace: ks,
		Security: cassandrastore.Security{Username: n.Username, Password: cassandrastore.Secret(n.Password),
			TLS: cassandrastore.TLSOptions{CAFile: n.CAFile}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// checkSecureServe starts serve on the keyspace with the password from the
// environment and checks every ad's count over the span against the
// recount, and that /metrics does not hold the password. It returns the
// server's log and /metrics.
func checkSecureServe(t *testing.T, n testenv.SecureNode, ks string, want reference.Results, from, to int64) string {
	t.Helper()
	const token = "sec-read-token-0123456789"
	srv := startBackground(t, map[string]string{"ADCLICK_TOKENS": "ci:read:" + token, backend.EnvCassandraPassword: n.Password},
		"serve", secureStoreArgs(n, ks)...)
	srv.waitReady(t)
	perAd := map[string]int64{}
	for k, c := range want.Counts {
		perAd[strings.SplitN(k, "/", 2)[1]] += c
	}
	q := "?from=" + time.Unix(from, 0).UTC().Format("2006-01-02T15:04") + "&to=" + time.Unix(to, 0).UTC().Format("2006-01-02T15:04")
	for ad, c := range perAd {
		req, _ := http.NewRequest("GET", srv.base+"/ads/"+ad+"/aggregated_count"+q, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var got struct{ Count int64 }
		err = json.NewDecoder(res.Body).Decode(&got)
		res.Body.Close()
		if res.StatusCode != 200 || err != nil || got.Count != c {
			t.Errorf("serve: %s: status %d, count %d (%v); want %d", ad, res.StatusCode, got.Count, err, c)
		}
	}
	res, err := http.Get(srv.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !bytes.Contains(metrics, []byte("adclick_")) {
		t.Errorf("/metrics shows no adclick metric:\n%.2000s", metrics)
	}
	if code := srv.stop(t); code != 0 {
		t.Errorf("serve: exit %d", code)
	}
	return srv.errb.String() + string(metrics)
}

// TestSecureCassandraFailFast: every command that opens the store, started
// with a wrong password, without the CA, with a CA that did not sign the
// node's certificate, or in plaintext, exits 1 within seconds with one
// message that names the node and the cause, and prints no password.
func TestSecureCassandraFailFast(t *testing.T) {
	brokers := testenv.Kafka(t)
	n, ks := testenv.SecureCassandraKeyspace(t, "adclick_cmdfail")
	migrateSecure(t, n, ks)
	const wrongPassword = "wrong-password-0815"
	other := testenv.NewTLSFiles(t)
	host := n.Hosts[0]
	cases := []struct {
		name     string
		password string
		args     []string // replacing the node's CA flag
		want     string
	}{
		{"wrong password", wrongPassword, []string{"--cassandra-tls-ca-file", n.CAFile},
			"cassandra at " + host + ` refused user "` + n.Username + `": wrong username or password`},
		{"no CA", n.Password, []string{"--cassandra-tls"},
			"cassandra at " + host + ": its certificate is not signed by a CA this client trusts (no CA file given"},
		{"unknown CA", n.Password, []string{"--cassandra-tls-ca-file", other.CA},
			"cassandra at " + host + ": its certificate is not signed by a CA this client trusts (the CAs of " + other.CA},
		{"plaintext", n.Password, nil,
			"cassandra at " + host + " closed the plaintext connection: it probably requires TLS"},
	}
	span := []string{"--from", "2024-01-01T10:00", "--to", "2024-01-01T11:00"}
	commands := map[string][]string{
		"migrate":  {"migrate"},
		"serve":    {"serve", "--listen", "127.0.0.1:0", "--insecure"},
		"dbwriter": {"dbwriter", "--kafka-brokers", strings.Join(brokers, ","), "--group", "sec-failfast"},
		"replay":   append([]string{"replay"}, span...),
	}
	for _, c := range cases {
		for cmd, prefix := range commands {
			t.Run(c.name+"/"+cmd, func(t *testing.T) {
				store := []string{"--store", "cassandra"}
				if cmd == "migrate" {
					store = nil
				}
				args := append(append(append(prefix, store...), "--cassandra-hosts", host, "--keyspace", ks,
					"--cassandra-username", n.Username), c.args...)
				var errb syncWriter
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				start := time.Now()
				code := run(ctx, args, serveEnv(&errb, map[string]string{backend.EnvCassandraPassword: c.password}))
				d, out := time.Since(start), errb.String()
				t.Logf("exit %d after %v: %s", code, d.Round(time.Millisecond), out)
				if code != 1 {
					t.Errorf("exit %d, want 1", code)
				}
				if !strings.Contains(out, c.want) {
					t.Errorf("output lacks %q", c.want)
				}
				if strings.Contains(out, wrongPassword) || strings.Contains(out, n.Password) {
					t.Error("the output holds a password")
				}
				if d > 15*time.Second {
					t.Errorf("took %v to fail, want at most 15 s", d)
				}
			})
		}
	}
}

// TestSecureCassandraFlags: the security flags are checked before anything
// connects, and name what is wrong without the password.
func TestSecureCassandraFlags(t *testing.T) {
	const pw = "flag-test-password-77"
	tls := testenv.NewTLSFiles(t)
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"dbwriter", "--kafka-brokers", "127.0.0.1:1", "--store", "cassandra", "--cassandra-hosts", "127.0.0.1:1"}
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"user without password", []string{"--cassandra-username", "u"}, nil, "--cassandra-username u needs a password"},
		{"password without user", nil, map[string]string{backend.EnvCassandraPassword: pw}, "no --cassandra-username"},
		{"missing password file", []string{"--cassandra-username", "u", "--cassandra-password-file", empty + ".missing"}, nil, empty + ".missing"},
		{"empty password file", []string{"--cassandra-username", "u", "--cassandra-password-file", empty}, nil, "is empty"},
		{"password file from env", []string{"--cassandra-username", "u"}, map[string]string{"ADCLICK_CASSANDRA_PASSWORD_FILE": empty}, "is empty"},
		{"cert without key", []string{"--cassandra-tls-cert-file", tls.ClientCert}, nil, "without its key file"},
		{"missing CA", []string{"--cassandra-tls-ca-file", empty + ".ca"}, nil, empty + ".ca"},
		{"CA from env", nil, map[string]string{"ADCLICK_CASSANDRA_TLS_CA_FILE": empty}, "holds no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var errb syncWriter
			if code := run(context.Background(), append(base, tc.args...), serveEnv(&errb, tc.env)); code != 2 {
				t.Errorf("exit %d, want 2 (usage): %s", code, errb.String())
			}
			if !strings.Contains(errb.String(), tc.want) {
				t.Errorf("output %q lacks %q", errb.String(), tc.want)
			}
			if strings.Contains(errb.String(), pw) {
				t.Error("the output holds the password")
			}
		})
	}
}

// TestSecureCassandraNoHostVerification: the flag connects without
// verifying the node (here without its CA) and says so at WARN.
func TestSecureCassandraNoHostVerification(t *testing.T) {
	n, ks := testenv.SecureCassandraKeyspace(t, "adclick_cmdnover")
	var errb syncWriter
	args := []string{"migrate", "--cassandra-hosts", strings.Join(n.Hosts, ","), "--keyspace", ks,
		"--cassandra-username", n.Username, "--cassandra-tls-no-host-verification"}
	if code := run(context.Background(), args, serveEnv(&errb, map[string]string{backend.EnvCassandraPassword: n.Password})); code != 0 {
		t.Fatalf("migrate: exit %d: %s", code, errb.String())
	}
	if out := errb.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "NOT verified") {
		t.Errorf("no warning: %s", out)
	}
}
