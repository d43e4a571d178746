package testservers

import (
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// A server that can only listen on every address (gnutls-serv has no
// option for the address) runs in a network namespace of its own, where
// "every address" is that namespace's loopback; a relay on 127.0.0.1 of the
// test's namespace carries each connection to it. TCP is relayed byte for
// byte, so TLS passes unchanged.

// isolatedCommand returns the program and arguments that run argv in a new
// network namespace with its loopback up. unshare and sh exec, so the PID
// started is argv's.
func isolatedCommand(t testing.TB, argv []string) (string, []string) {
	t.Helper()
	unshare := LookPath(t, "unshare")
	ip := LookPath(t, "ip")
	script := ip + ` link set lo up && exec "$@"`
	return unshare, append([]string{"--net", "--", "/bin/sh", "-c", script, "sh"}, argv...)
}

// nsRelay listens on 127.0.0.1:port and connects each connection to
// 127.0.0.1:port in the network namespace of the process pid names.
type nsRelay struct {
	ln   net.Listener
	pid  atomic.Int64
	port int
}

// startRelay listens on 127.0.0.1:port until the test ends.
func startRelay(t testing.TB, port int) (*nsRelay, error) {
	ln, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return nil, err
	}
	r := &nsRelay{ln: ln, port: port}
	t.Cleanup(func() { ln.Close() })
	go r.serve()
	return r, nil
}

func (r *nsRelay) serve() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		go r.relay(c)
	}
}

func (r *nsRelay) relay(c net.Conn) {
	defer c.Close()
	pid := int(r.pid.Load())
	if pid == 0 {
		return
	}
	s, err := dialInNetns(pid, net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)))
	if err != nil {
		return
	}
	defer s.Close()
	var wg sync.WaitGroup
	for _, p := range [][2]net.Conn{{s, c}, {c, s}} {
		wg.Add(1)
		go func(dst, src net.Conn) {
			defer wg.Done()
			io.Copy(dst, src)
			// Pass the FIN on, so that each side sees the other's close.
			if tc, ok := dst.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
		}(p[0], p[1])
	}
	wg.Wait()
}

// dialInNetns connects to addr from inside the network namespace of pid:
// the socket belongs to the namespace of the thread that creates it. The
// goroutine's thread enters the namespace and returns; should returning
// fail, the thread stays locked, and the runtime ends it with the goroutine
// (threads it starts meanwhile come from a clean template thread).
func dialInNetns(pid int, addr string) (net.Conn, error) {
	own, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, err
	}
	defer own.Close()
	target, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return nil, err
	}
	defer target.Close()
	runtime.LockOSThread()
	if err := setns(target); err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	conn, dialErr := net.DialTimeout("tcp4", addr, probeTimeout)
	if err := setns(own); err != nil {
		if conn != nil {
			conn.Close()
		}
		return nil, fmt.Errorf("returning to the test's network namespace: %w", err)
	}
	runtime.UnlockOSThread()
	return conn, dialErr
}

func setns(f *os.File) error {
	return unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
}
