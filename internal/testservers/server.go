package testservers

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/probe/starttls"
)

// Bounds of every wait in this package. They only stop a broken server from
// hanging the test; nothing asserts that a server is fast.
const (
	pollInterval = 50 * time.Millisecond
	// readyPolls × pollInterval bounds startup and reload (10 s): Apache
	// under the race detector on a loaded CI machine needs a few seconds.
	readyPolls = 200
	// probeTimeout bounds one readiness dial and handshake.
	probeTimeout = 2 * time.Second
	// termWait is how long a master gets to stop its workers after SIGTERM
	// before it is killed.
	termWait = 10 * time.Second
	// killWait bounds the wait for the kernel to remove killed processes.
	killWait = 5 * time.Second
	// portAttempts bounds the retries when another process takes the port
	// between FreePort and the server's bind.
	portAttempts = 3
	// logTail is how much of each log a failure message quotes.
	logTail = 16 << 10
)

// Server is one running server process (with its workers) on 127.0.0.1.
type Server struct {
	// Name says which server this is: "nginx", "apache2", "haproxy",
	// "openssl s_server", "gnutls-serv", "postfix", "dovecot imap",
	// "dovecot pop3", "vsftpd", "postgres", "slapd" or "prosody".
	Name string
	// Addr is "127.0.0.1:PORT", what a probe dials.
	Addr string
	// Port is Addr's port.
	Port int
	// PID is the master process; Restart changes it.
	PID int
	// Dir is the server's own directory: configuration, logs, PID file,
	// temporary files.
	Dir string
	// ConfigFile is the configuration the server was started with; empty
	// for openssl s_server and gnutls-serv, which take everything on their
	// command line.
	ConfigFile string

	spec  *launchSpec
	proc  *process
	errTB testing.TB // the test that owns the server, for Stop's complaints
}

// launchSpec is how to (re)start one kind of server.
type launchSpec struct {
	name   string
	binary string
	dir    string
	// config writes the configuration for port into dir and returns the
	// command-line arguments (after the binary) and the config file.
	config func(port int) (args []string, configFile string, err error)
	// logs are files in dir the server writes besides its stdout/stderr.
	logs []string
	// tlsReady, when set, is the CA pool a readiness handshake verifies
	// against; when nil a TCP connect is enough.
	tlsReady *PKI
	// reload signals the master and returns once the reload took effect.
	reload func(t testing.TB, s *Server)
	// starttls, when set, makes the readiness probe run this preamble
	// before its handshake (verified against tlsReady when that is set).
	starttls starttls.Protocol
	// setsid says the server makes itself a session leader (Postfix's
	// master). setsid(2) fails for a process-group leader, so such a server
	// starts without a group of its own; the session it creates is one
	// (its process group ID is its PID).
	setsid bool
	// started, when set, learns the PID of each master as soon as it runs,
	// before the readiness probe.
	started func(pid int)
	// ready, when set, is a further readiness check after the network
	// probe succeeded: the server may serve before it handles signals.
	ready func() error
}

// outputLog receives every server's stdout and stderr.
const outputLog = "output.log"

// process is one started master process.
type process struct {
	cmd    *exec.Cmd
	pid    int
	exited chan struct{} // closed once cmd.Wait returned
	err    error         // cmd.Wait's result, readable after exited is closed

	stopOnce sync.Once
	stopErr  error
	reported bool // stopErr has been handed to a caller
}

// start launches spec on a free port, retrying with a new port when the
// server reports the port taken, and waits until it serves.
func start(t testing.TB, spec *launchSpec) *Server {
	t.Helper()
	s := &Server{Name: spec.name, Dir: spec.dir, spec: spec, errTB: t}
	t.Cleanup(s.Stop)
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("testservers: finding a free port on 127.0.0.1: %v", err)
		}
		err = s.launch(port)
		if err == nil {
			return s
		}
		if attempt < portAttempts && s.proc != nil && s.proc.hasExited() && portTaken(s.Logs()) {
			t.Logf("testservers: %s: port %d was taken before the server bound it; retrying with another", s.Name, port)
			if err := s.stop(); err != nil { // the master is gone; this reaps any worker
				t.Fatalf("testservers: stopping %s after a failed start: %v\n%s", s.Name, err, s.Logs())
			}
			continue
		}
		logs := s.Logs()
		if stopErr := s.stop(); stopErr != nil {
			err = fmt.Errorf("%w; stopping it: %v", err, stopErr)
		}
		t.Fatalf("testservers: starting %s on 127.0.0.1:%d: %v\n%s", s.Name, port, err, logs)
	}
}

// portTaken reports whether a server's logs say its listen address was in
// use, in the words nginx, Apache, HAProxy and OpenSSL use.
func portTaken(logs string) bool {
	return strings.Contains(logs, "Address already in use") || strings.Contains(logs, "Address in use")
}

// launch writes the configuration for port, starts the master and waits
// until it serves. On error the process may still run; the caller stops it.
func (s *Server) launch(port int) error {
	args, cfg, err := s.spec.config(port)
	if err != nil {
		return fmt.Errorf("writing configuration: %w", err)
	}
	out, err := os.OpenFile(filepath.Join(s.Dir, outputLog), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close() // the child holds its own copy
	cmd := exec.Command(s.spec.binary, args...)
	cmd.Dir = s.Dir
	cmd.Stdout = out
	cmd.Stderr = out
	// A group of its own lets Stop find workers even when the master died
	// without reaping them, and keeps terminal signals meant for `go test`
	// from reaching the server.
	//
	// Pdeathsig covers what t.Cleanup cannot: a test binary killed by
	// `go test -timeout` or SIGKILL runs no cleanups, and its servers would
	// keep their ports. The signal follows the death of the OS thread that
	// started the server, which the Go runtime only ends for goroutines
	// that exit while locked to their thread; test goroutines are not.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: !s.spec.setsid, Pdeathsig: syscall.SIGTERM}
	fmt.Fprintf(out, "== testservers: %s\n", strings.Join(cmd.Args, " "))
	if err := cmd.Start(); err != nil {
		return err
	}
	p := &process{cmd: cmd, pid: cmd.Process.Pid, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	s.proc = p
	s.PID = p.pid
	if s.spec.started != nil {
		s.spec.started(p.pid)
	}
	s.Port = port
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s.ConfigFile = cfg
	return s.waitServing()
}

// waitServing polls the server until a readiness probe succeeds, the master
// exits, or the bound passes.
func (s *Server) waitServing() error {
	var last error
	for range readyPolls {
		if s.proc.hasExited() {
			return fmt.Errorf("%s exited before serving: %v", s.Name, s.proc.err)
		}
		if last = s.probe(); last == nil {
			return nil
		}
		time.Sleep(pollInterval)
	}
	return fmt.Errorf("not serving after %v: %w", readyPolls*pollInterval, last)
}

// probe dials the server once and, for TLS servers, completes a handshake
// that verifies the certificate for ServerName against the test CA; then it
// runs the server's own further check, if any.
func (s *Server) probe() error {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	if s.spec.starttls != starttls.None {
		if err := startTLSReady(ctx, s.Addr, s.spec.starttls, s.spec.tlsReady); err != nil {
			return err
		}
		if s.spec.ready != nil {
			return s.spec.ready()
		}
		return nil
	}
	var d interface {
		DialContext(ctx context.Context, network, addr string) (net.Conn, error)
	} = &net.Dialer{}
	if s.spec.tlsReady != nil {
		d = &tls.Dialer{Config: &tls.Config{RootCAs: s.spec.tlsReady.Pool, ServerName: ServerName}}
	}
	c, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return err
	}
	c.Close()
	if s.spec.ready != nil {
		return s.spec.ready()
	}
	return nil
}

// hasExited reports whether the master process has exited.
func (p *process) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// Stop stops the server and all its workers: SIGTERM to the master, SIGKILL
// when it has not exited within a bound, then SIGKILL to any worker that
// outlived it. It is idempotent and runs by itself when the test ends; it
// reports failures to stop through the test that started the server.
func (s *Server) Stop() {
	if err := s.stop(); err != nil {
		s.errTB.Errorf("testservers: stopping %s: %v\n%s", s.Name, err, s.Logs())
	}
}

// stop stops the current process and returns what went wrong, once: later
// calls return nil, so each failure is reported exactly once.
func (s *Server) stop() error {
	if s.proc == nil {
		return nil
	}
	err := s.proc.stop()
	if err == nil || s.proc.reported {
		return nil
	}
	s.proc.reported = true
	return err
}

func (p *process) stop() error {
	p.stopOnce.Do(func() { p.stopErr = p.terminate() })
	return p.stopErr
}

// terminate stops the master and then makes sure nothing it started
// survives. Processes are only ever signalled by PID (or by the process
// group this package created), after checking they are the ones started.
func (p *process) terminate() error {
	// Remember the workers now: once the master is gone they are
	// reparented and only the process group still ties them to it.
	fam := family(p.pid)
	if !p.hasExited() {
		_ = syscall.Kill(p.pid, syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(termWait):
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
			select {
			case <-p.exited:
			case <-time.After(killWait):
				return fmt.Errorf("master pid %d survived SIGKILL for %v", p.pid, killWait)
			}
		}
	}
	// Masters wait for their workers on SIGTERM, so normally nothing is
	// left; a worker that is left gets a moment, then SIGKILL.
	var left []int
	deadline := time.Now().Add(termWait)
	killed := false
	for {
		left = left[:0]
		for _, q := range fam {
			if q.pid != p.pid && alive(q) {
				left = append(left, q.pid)
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			if killed {
				return fmt.Errorf("processes %v survived SIGKILL", left)
			}
			for _, pid := range left {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			killed = true
			deadline = time.Now().Add(killWait)
		}
		time.Sleep(pollInterval)
	}
}

// Logs returns the server's stdout, stderr and log files (the last
// logTail bytes of each), for failure messages.
func (s *Server) Logs() string {
	var b strings.Builder
	for _, name := range append([]string{outputLog}, s.spec.logs...) {
		data, err := os.ReadFile(filepath.Join(s.Dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		fmt.Fprintf(&b, "--- %s %s:\n", s.Name, name)
		if err != nil {
			fmt.Fprintf(&b, "(%v)\n", err)
			continue
		}
		if len(data) > logTail {
			fmt.Fprintf(&b, "(… %d bytes left out)\n", len(data)-logTail)
			data = data[len(data)-logTail:]
		}
		b.Write(data)
		if len(data) > 0 && data[len(data)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// Workers returns the PIDs of the master's live child processes, sorted.
// For s_server, which has no workers, it is empty.
func (s *Server) Workers() []int {
	return childPIDs(s.PID)
}

// Reload asks the server to re-read its configuration the way an operator
// would (nginx: SIGHUP; Apache: graceful restart, SIGUSR1; HAProxy: SIGUSR2 to
// its master) and returns once the reload took effect: the master runs new
// workers, the old ones are gone or (nginx) shutting down, and a new
// connection completes a handshake. Servers without a key file get a fresh
// session-ticket key this way. openssl s_server cannot reload; Reload fails
// the test for it (use Restart).
func (s *Server) Reload(t testing.TB) {
	t.Helper()
	if s.spec.reload == nil {
		t.Fatalf("testservers: %s cannot reload its configuration; use Restart", s.Name)
	}
	s.spec.reload(t, s)
}

// Restart stops the server and starts it again on the same port with the
// same configuration (rewritten, so edits to the spec's inputs do not
// matter): a new master process, as after a reboot or `systemctl restart`.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.stop(); err != nil {
		t.Fatalf("testservers: stopping %s for a restart: %v\n%s", s.Name, err, s.Logs())
	}
	if err := s.launch(s.Port); err != nil {
		t.Fatalf("testservers: restarting %s on %s: %v\n%s", s.Name, s.Addr, err, s.Logs())
	}
}

// reloadBySignal sends sig to the master and waits until it runs workers
// that were not there before and every earlier worker is done, by exiting
// or, when retired(pid) says so, by no longer accepting connections.
func reloadBySignal(t testing.TB, s *Server, sig syscall.Signal, retired func(pid int) bool) {
	t.Helper()
	if s.proc.hasExited() {
		t.Fatalf("testservers: %s exited before the reload: %v\n%s", s.Name, s.proc.err, s.Logs())
	}
	old := family(s.PID)
	var oldWorkers []procStat
	for _, p := range old {
		if p.pid != s.PID {
			oldWorkers = append(oldWorkers, p)
		}
	}
	if err := syscall.Kill(s.PID, sig); err != nil {
		t.Fatalf("testservers: signalling %s (pid %d) to reload: %v", s.Name, s.PID, err)
	}
	var state string
	for range readyPolls {
		time.Sleep(pollInterval)
		if s.proc.hasExited() {
			t.Fatalf("testservers: %s exited during the reload: %v\n%s", s.Name, s.proc.err, s.Logs())
		}
		workers := childPIDs(s.PID)
		fresh := slices.ContainsFunc(workers, func(pid int) bool {
			return !slices.ContainsFunc(oldWorkers, func(o procStat) bool { return o.pid == pid && alive(o) })
		})
		var lingering []int
		for _, o := range oldWorkers {
			if alive(o) && (retired == nil || !retired(o.pid)) {
				lingering = append(lingering, o.pid)
			}
		}
		state = fmt.Sprintf("workers before %v, now %v, old ones still serving %v", pids(oldWorkers), workers, lingering)
		if !fresh || len(lingering) > 0 {
			continue
		}
		if err := s.probe(); err != nil {
			state += fmt.Sprintf(", handshake: %v", err)
			continue
		}
		return
	}
	t.Fatalf("testservers: %s did not finish reloading within %v (%s)\n%s", s.Name, readyPolls*pollInterval, state, s.Logs())
}

func pids(ps []procStat) []int {
	out := make([]int, len(ps))
	for i, p := range ps {
		out[i] = p.pid
	}
	return out
}
