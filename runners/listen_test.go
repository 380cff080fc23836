package runners

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
)

// listening lists this process's TCP sockets in LISTEN state as "ip:port":
// the sockets of /proc/self/net/tcp{,6} whose inode is one of this
// process's open file descriptors.
func listening() ([]string, error) {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, fmt.Errorf("list fds: %w", err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err != nil {
			continue // closed since ReadDir
		}
		if ino, ok := strings.CutPrefix(link, "socket:["); ok {
			inodes[strings.TrimSuffix(ino, "]")] = true
		}
	}
	var out []string
	for _, table := range []string{"/proc/self/net/tcp", "/proc/self/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			return nil, fmt.Errorf("socket table: %w", err)
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] {
				continue
			}
			addr, err := procAddr(fields[1])
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("%s: %w", table, err)
			}
			out = append(out, addr)
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", table, err)
		}
	}
	return out, nil
}

// procAddr decodes /proc/net/tcp's "HEXIP:HEXPORT": the address is stored
// as 32-bit words in host (little-endian) order.
func procAddr(s string) (string, error) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return "", fmt.Errorf("bad address %q", s)
	}
	raw, err := hex.DecodeString(h)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return "", fmt.Errorf("bad address %q", s)
	}
	for i := 0; i < len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return "", fmt.Errorf("bad port in %q", s)
	}
	return net.JoinHostPort(net.IP(raw).String(), strconv.FormatUint(port, 10)), nil
}

var during struct {
	sync.Mutex
	seen map[string]bool
	err  error
}

// recordListeners runs inside the pipeline (loopback: in this process), so
// it sees every socket the runner and the worker pool have open mid-run.
func recordListeners(_ int) {
	socks, err := listening()
	during.Lock()
	defer during.Unlock()
	if err != nil {
		during.err = err
		return
	}
	for _, s := range socks {
		during.seen[s] = true
	}
}

func init() { register.Function1x0(recordListeners) }

// TestPrismListensOnLoopbackOnly: nothing a prism pipeline opens in this
// process listens beyond 127.0.0.1 / ::1. Prism's own job server binds
// ":port" (every interface), an unauthenticated gRPC port on every
// adclick process that runs a pipeline.
func TestPrismListensOnLoopbackOnly(t *testing.T) {
	if _, err := os.Stat("/proc/self/net/tcp"); err != nil {
		t.Skip("no /proc/self/net/tcp")
	}
	during.Lock()
	during.seen = map[string]bool{}
	during.Unlock()

	p, s := beam.NewPipelineWithRoot()
	beam.ParDo0(s, recordListeners, beam.Create(s, 1, 2, 3))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := Run(ctx, p, Options{Runner: Prism}); err != nil {
		t.Fatal(err)
	}
	after, err := listening()
	if err != nil {
		t.Fatal(err)
	}

	during.Lock()
	defer during.Unlock()
	if during.err != nil {
		t.Fatal(during.err)
	}
	if len(during.seen) == 0 {
		t.Fatal("the pipeline saw no listening socket: prism's job server at least should be there")
	}
	for _, s := range after {
		during.seen[s] = true
	}
	for s := range during.seen {
		host, _, _ := net.SplitHostPort(s)
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			t.Errorf("listening on %s: only loopback addresses are allowed", s)
		}
	}
	t.Logf("listening sockets during and after the run: %v", during.seen)
}
