package probe

import (
	"context"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
	"github.com/resumption-exporter/resumption_exporter/probe/internal/wire"
)

func drain(c net.Conn) {
	var buf [1024]byte
	for {
		if _, err := c.Read(buf[:]); err != nil {
			return
		}
	}
}

// Broken and hostile servers make the probe fail, with a reason, within its
// timeout: never a hang, never a panic.
func TestRunAgainstBrokenServers(t *testing.T) {
	const timeout = 2 * time.Second
	tests := []struct {
		name   string
		serve  func(net.Conn)
		reason string // a regexp the failure must match
	}{
		{"silent: accepts and never answers", drain, "timed out"},
		{"closes at once", func(c net.Conn) {}, "EOF|connection reset"},
		{"speaks HTTP, not TLS", func(c net.Conn) {
			c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
			drain(c)
		}, "handshake"},
		{"endless garbage", func(c net.Conn) {
			junk := []byte(strings.Repeat("\x16\x03\x03\xff\xff", 1000))
			for i := 0; i < 10000; i++ {
				if _, err := c.Write(junk); err != nil {
					return
				}
			}
		}, "handshake"},
		{"endless valid-looking records", func(c net.Conn) {
			rec := wire.AppendRecords(nil, wire.RecordHandshake, wire.VersionTLS12, make([]byte, 0x4000))
			for i := 0; i < 10000; i++ {
				if _, err := c.Write(rec); err != nil {
					return
				}
			}
		}, "handshake"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := DefaultModule
			m.Timeout, m.TicketWait = timeout, 500*time.Millisecond
			expectBrokenServer(t, testservers.ServeTCP(t, tt.serve), &m, tt.reason)
		})
	}
}

// expectBrokenServer probes addr with m and checks the probe fails with a
// reason matching the regexp reason, within m's timeout plus a margin, and
// with no check claiming completion.
func expectBrokenServer(t *testing.T, addr string, m *Module, reason string) {
	t.Helper()
	start := time.Now()
	r := Run(context.Background(), addr, "test", m, nil, testLogger(t))
	took := time.Since(start)
	if r.Success {
		t.Fatal("probe of a broken server succeeded")
	}
	if !regexp.MustCompile(reason).MatchString(r.Failure) {
		t.Errorf("failure %q does not say %q", r.Failure, reason)
	}
	if took > m.Timeout+2*time.Second {
		t.Errorf("probe took %s, timeout was %s", took, m.Timeout)
	}
	for _, c := range r.Checks {
		if c.Completed {
			t.Errorf("%s check claims completion against a broken server", c.Mechanism)
		}
	}
}

func TestRunNothingListening(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	m := DefaultModule
	r := Run(context.Background(), addr, "test", &m, nil, nil)
	if r.Success || !strings.Contains(r.Failure, "connection refused") {
		t.Fatalf("success=%v failure=%q, want a refused connection", r.Success, r.Failure)
	}
}

// An unresolvable name is looked up inside a network namespace of its own,
// which has only a loopback interface: the query cannot leave the machine.
// The test re-runs itself there.
func TestRunUnresolvableName(t *testing.T) {
	if os.Getenv("PROBE_TEST_IN_NETNS") == "1" {
		m := DefaultModule
		m.Timeout = 3 * time.Second
		r := Run(context.Background(), "no-such-host.invalid:443", "test", &m, nil, nil)
		if r.Success || !strings.Contains(r.Failure, "resolve no-such-host.invalid") {
			t.Fatalf("success=%v failure=%q, want a resolution failure", r.Success, r.Failure)
		}
		return
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil || os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("unshare (util-linux) and root are needed to isolate the DNS lookup: %v", err)
		}
		t.Skip("needs unshare and root to isolate the DNS lookup")
	}
	cmd := exec.Command(unshare, "--net", os.Args[0], "-test.run=^TestRunUnresolvableName$", "-test.v")
	cmd.Env = append(os.Environ(), "PROBE_TEST_IN_NETNS=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("in network namespace: %v\n%s", err, out)
	}
}
