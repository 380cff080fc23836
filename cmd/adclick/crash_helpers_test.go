package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adclick/adclick/domain/result"
	"github.com/adclick/adclick/io/store"
	"github.com/adclick/adclick/io/store/pebblestore"
	"github.com/adclick/adclick/testing/clickgen"
	"github.com/adclick/adclick/testing/reference"
)

// crashChildEnv carries a component's command line (JSON) to a child process
// started by TestCrash: the test binary re-executes itself as `adclick`, so
// each component is a real process that can be SIGKILLed.
const crashChildEnv = "ADCLICK_CRASH_CHILD_ARGS"

// TestCrashChild is not a test: it is the entry point of the component
// processes TestCrash starts. Without crashChildEnv it does nothing.
func TestCrashChild(t *testing.T) {
	a := os.Getenv(crashChildEnv)
	if a == "" {
		return
	}
	var args []string
	if err := json.Unmarshal([]byte(a), &args); err != nil {
		fmt.Fprintf(os.Stderr, "crash child: bad %s: %v\n", crashChildEnv, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, args, &cliEnv{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv})
	stop()
	os.Exit(code)
}

// component is one adclick process, restartable with the same arguments. Its
// stdout and stderr of every incarnation go to one log file.
type component struct {
	t       *testing.T
	name    string
	args    []string
	logPath string
	starts  int

	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func newComponent(t *testing.T, dir, name string, args ...string) *component {
	return &component{t: t, name: name, args: args, logPath: filepath.Join(dir, name+".log")}
}

// childEnv is the test's environment without ADCLICK_* variables (each is a
// flag default for adclick), plus the child's command line.
func childEnv(args []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ADCLICK_") {
			env = append(env, kv)
		}
	}
	b, _ := json.Marshal(args)
	return append(env, crashChildEnv+"="+string(b))
}

func (c *component) start() {
	c.t.Helper()
	if c.running() {
		c.t.Fatalf("%s: started while running", c.name)
	}
	f, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	c.starts++
	fmt.Fprintf(f, "=== %s start #%d at %s: adclick %s\n", c.name, c.starts, time.Now().Format(time.StampMilli), strings.Join(c.args, " "))
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1", "-test.timeout=0")
	cmd.Env = childEnv(c.args)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		c.t.Fatalf("%s: %v", c.name, err)
	}
	done := make(chan struct{})
	c.cmd, c.done, c.err = cmd, done, nil
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(f, "=== %s exit at %s: %v\n", c.name, time.Now().Format(time.StampMilli), err)
		f.Close()
		c.err = err
		close(done)
	}()
}

func (c *component) running() bool {
	if c.done == nil {
		return false
	}
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// kill SIGKILLs the process and waits for it.
func (c *component) kill() {
	c.t.Helper()
	if !c.running() {
		c.t.Errorf("%s: killed while not running (exit: %v)", c.name, c.err)
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
}

// interrupt stops the process with SIGINT; it must exit 0 within timeout.
func (c *component) interrupt(timeout time.Duration) {
	c.t.Helper()
	if !c.running() {
		c.t.Errorf("%s: not running at the end (exit: %v); log %s", c.name, c.err, c.logPath)
		return
	}
	_ = c.cmd.Process.Signal(os.Interrupt)
	select {
	case <-c.done:
		if c.err != nil {
			c.t.Errorf("%s: exit after SIGINT: %v; log %s", c.name, c.err, c.logPath)
		}
	case <-time.After(timeout):
		_ = c.cmd.Process.Signal(syscall.SIGKILL)
		<-c.done
		c.t.Errorf("%s: did not exit within %v of SIGINT; killed; log %s", c.name, timeout, c.logPath)
	}
}

// alive fails the test when the process died on its own.
func (c *component) alive() {
	c.t.Helper()
	if !c.running() {
		c.t.Fatalf("%s exited on its own: %v\n%s", c.name, c.err, tail(c.logPath, 3000))
	}
}

// tail returns the last n bytes of a file.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// kafkaAdmin wraps the admin calls the test polls with.
type kafkaAdmin struct {
	cl  *kgo.Client
	adm *kadm.Client
}

func newKafkaAdmin(t *testing.T, brokers []string) *kafkaAdmin {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &kafkaAdmin{cl: cl, adm: kadm.NewClient(cl)}
}

// ends returns the end offset of every partition of topic.
func (k *kafkaAdmin) ends(ctx context.Context, topic string) (map[int32]int64, error) {
	lo, err := k.adm.ListEndOffsets(ctx, topic)
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

// committed returns group's committed offsets of topic.
func (k *kafkaAdmin) committed(ctx context.Context, group, topic string) (map[int32]int64, error) {
	or, err := k.adm.FetchOffsets(ctx, group)
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

func sum(m map[int32]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// resultsTail follows a results topic from its start and keeps, per key, the
// record of the highest offset — what a DB writer that overwrites by key ends
// up storing (a key always lives on one partition).
type resultsTail struct {
	cl   *kgo.Client
	last map[string]result.Record
}

func newResultsTail(t *testing.T, brokers []string, topic string) *resultsTail {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &resultsTail{cl: cl, last: map[string]result.Record{}}
}

// poll reads what arrived within d.
func (r *resultsTail) poll(t *testing.T, d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	fs := r.cl.PollFetches(ctx)
	fs.EachRecord(func(k *kgo.Record) {
		var rec result.Record
		if err := json.Unmarshal(k.Value, &rec); err != nil {
			t.Errorf("bad result %q: %v", k.Value, err)
			return
		}
		r.last[rec.Key()] = rec
	})
}

func (r *resultsTail) results() reference.Results {
	recs := make([]result.Record, 0, len(r.last))
	for _, rec := range r.last {
		recs = append(recs, rec)
	}
	return reference.FromRecords(recs)
}

// resultsEqual says whether two result sets are identical.
func resultsEqual(a, b reference.Results) bool {
	eq := func(x, y map[string]int64) bool {
		if len(x) != len(y) {
			return false
		}
		for k, v := range y {
			if w, ok := x[k]; !ok || w != v {
				return false
			}
		}
		return true
	}
	return eq(a.Counts, b.Counts) && eq(a.Filtered, b.Filtered) && reflect.DeepEqual(a.Top, b.Top)
}

// readStore opens the Pebble store in dir (its writer has exited) and reads
// every count, filtered count and top list of the minutes [from, to).
func readStore(t *testing.T, dir string, from, to int64, windowSizes []int) reference.Results {
	t.Helper()
	st, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		t.Fatalf("opening the store %s: %v", dir, err)
	}
	defer st.Close()
	ctx := context.Background()
	var recs []result.Record
	if err := st.ScanCounts(ctx, from, to, func(r result.Record) error {
		recs = append(recs, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, w := range windowSizes {
		for m := from; m < to; m += 60 {
			top, err := st.Top(ctx, w, m)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			recs = append(recs, result.Record{Top: &top})
		}
	}
	return reference.FromRecords(recs)
}

// writeLog writes the generated lines as a click log.
func writeLog(t *testing.T, path string, lines [][]byte) int64 {
	t.Helper()
	var b bytes.Buffer
	for _, l := range lines {
		b.Write(l)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return int64(b.Len())
}

// genCrashLines generates n lines with their truth.
func genCrashLines(t *testing.T, n int, cfg clickgen.Config) ([][]byte, *clickgen.Truth) {
	t.Helper()
	lines, truth, err := clickgen.Lines(n, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return lines, truth
}

// positionAt says whether the log watcher's state file records offset size
// (every line acknowledged by the broker and persisted).
func positionAt(state string, size int64) bool {
	b, err := os.ReadFile(state)
	return err == nil && bytes.Contains(b, []byte(fmt.Sprintf(`"offset":%d`, size)))
}
