package testservers

import (
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
	// for programs that take everything on their command line (openssl
	// s_server, gnutls-serv, the exporter).
	ConfigFile string

	spec  Spec
	proc  *process
	errTB testing.TB // the test that owns the server, for Stop's complaints
}

// Spec says how to start one program and when it serves. Start runs it;
// the nginx, Apache, HAProxy and openssl s_server starters of this package
// build one, and so do StartExporter, StartPrometheus and StartAlertmanager.
// A starter for another server builds one too.
type Spec struct {
	// Name names the program in messages and in Server.Name.
	Name string
	// Binary is the executable (see LookPath).
	Binary string
	// Dir is the program's own directory: its working directory, where
	// output.log receives its stdout and stderr, and where its
	// configuration and logs belong. Empty: a new t.TempDir().
	Dir string
	// Config writes whatever configuration depends on the listening port
	// and returns the command-line arguments after the binary, and the
	// configuration file (which may be ""). It runs again for Restart.
	Config func(port int) (args []string, configFile string, err error)
	// Logs are files in Dir the program writes besides its stdout and
	// stderr, which Server.Logs quotes too.
	Logs []string
	// Ready are the checks that must all pass, in order, before Start
	// returns and after a reload; none means a TCP connect to the port.
	Ready []ReadyCheck
	// ReadyTimeout bounds the wait for Ready; zero means 10 s.
	ReadyTimeout time.Duration
	// Reload, when set, is what Server.Reload does: signal the program
	// and return once the reload took effect.
	Reload func(t testing.TB, s *Server)
	// LogsOnFailure has the program's logs written to the test's log when
	// the test has failed by the time it ends, for programs whose trouble
	// shows in later assertions rather than in Start.
	LogsOnFailure bool
	// Setsid says the program makes itself a session leader (Postfix's
	// master). setsid(2) fails for a process-group leader, so such a
	// program starts without a group of its own; the session it creates is
	// one (its process group ID is its PID).
	Setsid bool
	// Started, when set, learns the PID of each master as soon as it runs,
	// before the Ready checks (for a relay into the master's network
	// namespace, say).
	Started func(pid int)
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

// Start runs spec on a free port of 127.0.0.1, retrying with a new port
// when the program reports the port taken, and returns once every Ready
// check passes. It fails the test, with the program's logs, when the
// program does not start or exits first. The program is stopped when the
// test ends.
func Start(t testing.TB, spec Spec) *Server {
	t.Helper()
	if spec.Dir == "" {
		spec.Dir = t.TempDir()
	}
	s := &Server{Name: spec.Name, Dir: spec.Dir, spec: spec, errTB: t}
	t.Cleanup(func() {
		s.Stop()
		if spec.LogsOnFailure && t.Failed() {
			t.Logf("testservers: %s (pid %d) logs:\n%s", s.Name, s.PID, s.Logs())
		}
	})
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
// use, in the words nginx, Apache, HAProxy, OpenSSL and Go programs use.
func portTaken(logs string) bool {
	logs = strings.ToLower(logs)
	return strings.Contains(logs, "address already in use") || strings.Contains(logs, "address in use")
}

// launch writes the configuration for port, starts the master and waits
// until it serves. On error the process may still run; the caller stops it.
func (s *Server) launch(port int) error {
	args, cfg, err := s.spec.Config(port)
	if err != nil {
		return fmt.Errorf("writing configuration: %w", err)
	}
	out, err := os.OpenFile(filepath.Join(s.Dir, outputLog), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close() // the child holds its own copy
	cmd := exec.Command(s.spec.Binary, args...)
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
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: !s.spec.Setsid, Pdeathsig: syscall.SIGTERM}
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
	if s.spec.Started != nil {
		s.spec.Started(p.pid)
	}
	s.Port = port
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s.ConfigFile = cfg
	return s.waitServing()
}

// waitServing polls the server until its Ready checks pass, the master
// exits, or the bound passes.
func (s *Server) waitServing() error {
	bound := s.spec.ReadyTimeout
	if bound <= 0 {
		bound = readyPolls * pollInterval
	}
	deadline := time.Now().Add(bound)
	var last error
	for {
		if s.proc.hasExited() {
			return fmt.Errorf("%s exited before serving (%s)", s.Name, exitStatus(s.proc.err))
		}
		if last = s.probe(); last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not serving after %v: %w", bound, last)
		}
		time.Sleep(pollInterval)
	}
}

// probe runs the Ready checks once, in order: by default a TCP connect.
func (s *Server) probe() error {
	checks := s.spec.Ready
	if len(checks) == 0 {
		checks = []ReadyCheck{TCPReady()}
	}
	for _, check := range checks {
		if err := check(s); err != nil {
			return err
		}
	}
	return nil
}

// exitStatus describes what cmd.Wait returned, nil (exit status 0)
// included.
func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
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

// stop stops the current process with SIGTERM (see stopWith).
func (s *Server) stop() error { return s.stopWith(syscall.SIGTERM) }

// stopWith stops the current process, the first time, by sending it sig,
// and returns what went wrong, once: later calls return nil, so each
// failure is reported exactly once.
func (s *Server) stopWith(sig syscall.Signal) error {
	if s.proc == nil {
		return nil
	}
	err := s.proc.stopWith(sig)
	if err == nil || s.proc.reported {
		return nil
	}
	s.proc.reported = true
	return err
}

// stopWith stops the process, the first time it is called, by sending it
// sig; later calls return the first one's result.
func (p *process) stopWith(sig syscall.Signal) error {
	p.stopOnce.Do(func() { p.stopErr = p.terminate(sig) })
	return p.stopErr
}

// terminate stops the master with sig (SIGKILL once termWait has passed)
// and then makes sure nothing it started survives. Processes are only ever
// signalled by PID (or by the process group this package created), after
// checking they are the ones started.
func (p *process) terminate(sig syscall.Signal) error {
	// Remember the workers now: once the master is gone they are
	// reparented and only the process group still ties them to it.
	fam := family(p.pid)
	if !p.hasExited() {
		_ = syscall.Kill(p.pid, sig)
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
func (s *Server) Logs() string { return s.readLogs(logTail) }

// readLogs returns the server's stdout, stderr and log files, each cut to
// its last tail bytes when tail > 0.
func (s *Server) readLogs(tail int) string {
	var b strings.Builder
	for _, name := range append([]string{outputLog}, s.spec.Logs...) {
		data, err := os.ReadFile(filepath.Join(s.Dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		fmt.Fprintf(&b, "--- %s %s:\n", s.Name, name)
		if err != nil {
			fmt.Fprintf(&b, "(%s)\n", err)
			continue
		}
		if tail > 0 && len(data) > tail {
			fmt.Fprintf(&b, "(… %d bytes left out)\n", len(data)-tail)
			data = data[len(data)-tail:]
		}
		b.Write(data)
		if len(data) > 0 && data[len(data)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// URL returns http://ADDR followed by path, for servers that speak HTTP
// (the exporter, Prometheus, Alertmanager).
func (s *Server) URL(path string) string { return "http://" + s.Addr + path }

// Signal sends sig to the master process by PID, failing the test when it
// has exited.
func (s *Server) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if s.proc == nil || s.proc.hasExited() {
		t.Fatalf("testservers: cannot signal %s: it is not running\n%s", s.Name, s.Logs())
	}
	if err := syscall.Kill(s.PID, sig); err != nil {
		t.Fatalf("testservers: signalling %s (pid %d): %v", s.Name, s.PID, err)
	}
}

// Kill stops the server as a crash would: SIGKILL to the master, which
// gets no chance to clean up, and then to anything it left behind. Like
// Stop it is idempotent; after either, the other does nothing.
func (s *Server) Kill() {
	if err := s.stopWith(syscall.SIGKILL); err != nil {
		s.errTB.Errorf("testservers: killing %s: %v\n%s", s.Name, err, s.Logs())
	}
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
	if s.spec.Reload == nil {
		t.Fatalf("testservers: %s cannot reload its configuration; use Restart", s.Name)
	}
	s.spec.Reload(t, s)
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
		t.Fatalf("testservers: %s exited before the reload (%s)\n%s", s.Name, exitStatus(s.proc.err), s.Logs())
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
			t.Fatalf("testservers: %s exited during the reload (%s)\n%s", s.Name, exitStatus(s.proc.err), s.Logs())
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
