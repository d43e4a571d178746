package testservers

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// programHelperEnv makes the test binary, run again by the Spec tests,
// act as a small Go server: TestProgramHelper.
const programHelperEnv = "TESTSERVERS_PROGRAM_HELPER"

// TestProgramHelper serves HTTP on the address given after "--", says so on
// stderr, says so again on each SIGHUP, and on SIGTERM says so and ends. It
// gives up after a minute.
func TestProgramHelper(t *testing.T) {
	if os.Getenv(programHelperEnv) == "" {
		t.Skip("run by the Spec tests")
	}
	ln, err := net.Listen("tcp", flag.Arg(0))
	if err != nil {
		t.Fatal(err) // Go's words: "bind: address already in use"
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM)
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") }))
	fmt.Fprintln(os.Stderr, "helper serving")
	deadline := time.After(time.Minute)
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGTERM {
				fmt.Fprintln(os.Stderr, "helper terminated")
				return
			}
			fmt.Fprintln(os.Stderr, "helper reloaded")
		case <-deadline:
			t.Fatal("helper not stopped within a minute")
		}
	}
}

// helperSpec runs TestProgramHelper as a program.
func helperSpec(t *testing.T, ready ...ReadyCheck) Spec {
	t.Setenv(programHelperEnv, "1") // the helper inherits the environment
	return Spec{
		Name:   "helper",
		Binary: os.Args[0],
		Config: func(port int) ([]string, string, error) {
			return []string{"-test.run=^TestProgramHelper$", "--", "127.0.0.1:" + strconv.Itoa(port)}, "", nil
		},
		Ready: ready,
	}
}

// waitFor polls check until it passes, failing the test after the
// readiness bound.
func waitFor(t *testing.T, what string, check func() error) {
	t.Helper()
	var err error
	for range readyPolls {
		if err = check(); err == nil {
			return
		}
		time.Sleep(pollInterval)
	}
	t.Fatalf("%s: %v", what, err)
}

func TestStartProgram(t *testing.T) {
	s := Start(t, helperSpec(t, HTTPReady("/"), LogReady("helper serving")))
	resp, err := http.Get(s.URL("/"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		t.Errorf("GET %s: %s %q, want 200 \"ok\\n\"", s.URL("/"), resp.Status, body)
	}
	if err := LogReady("never said")(s); err == nil {
		t.Error("LogReady passed for text the program never wrote")
	} else if !strings.Contains(err.Error(), "never said") {
		t.Errorf("LogReady for text the program never wrote: %q does not name it", err)
	}

	s.Signal(t, syscall.SIGHUP)
	waitFor(t, "SIGHUP reached the helper", func() error { return LogReady("helper reloaded")(s) })

	fam := family(s.PID)
	s.Stop()
	if !strings.Contains(s.Logs(), "helper terminated") {
		t.Errorf("Stop did not end the program with SIGTERM:\n%s", s.Logs())
	}
	for _, p := range fam {
		if alive(p) {
			t.Errorf("pid %d survived Stop", p.pid)
		}
	}
	if err := TCPReady()(s); err == nil {
		t.Errorf("%s still accepts connections after Stop", s.Addr)
	}
}

func TestKill(t *testing.T) {
	s := Start(t, helperSpec(t, LogReady("helper serving")))
	fam := family(s.PID)
	s.Kill()
	s.Stop() // does nothing after Kill
	for _, p := range fam {
		if alive(p) {
			t.Errorf("pid %d survived Kill", p.pid)
		}
	}
	if strings.Contains(s.Logs(), "helper terminated") {
		t.Errorf("Kill let the program end gracefully:\n%s", s.Logs())
	}
}

// A program that exits before it serves is reported with its exit status,
// 0 included, and its output.
func TestLaunchReportsEarlyExit(t *testing.T) {
	for _, code := range []int{0, 3} {
		t.Run(fmt.Sprint("exit ", code), func(t *testing.T) {
			spec := Spec{Name: "sh", Binary: "/bin/sh", Dir: t.TempDir(), Config: func(int) ([]string, string, error) {
				return []string{"-c", fmt.Sprintf("echo giving up; exit %d", code)}, "", nil
			}}
			s := &Server{Name: spec.Name, Dir: spec.Dir, spec: spec, errTB: t}
			t.Cleanup(s.Stop)
			err := s.launch(FreePort(t))
			want := fmt.Sprintf("exited before serving (exit status %d)", code)
			if err == nil {
				t.Fatalf("launch succeeded; want an error saying %q", want)
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("launch: %q, want an error saying %q", err, want)
			}
			if !strings.Contains(s.Logs(), "giving up") {
				t.Errorf("logs lack the program's output:\n%s", s.Logs())
			}
		})
	}
}

// A Go program's words for a taken port are recognised, so Start retries
// the exporter, Prometheus and Alertmanager on another port.
func TestPortTakenByGoProgram(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// Ready by its log: a TCP connect would reach the listener holding
	// the port.
	spec := helperSpec(t, LogReady("helper serving"))
	spec.Dir = t.TempDir()
	s := &Server{Name: spec.Name, Dir: spec.Dir, spec: spec, errTB: t}
	t.Cleanup(s.Stop)
	if err := s.launch(l.Addr().(*net.TCPAddr).Port); err == nil {
		t.Fatalf("started on %s although a listener holds it\n%s", l.Addr(), s.Logs())
	}
	if !s.proc.hasExited() || !portTaken(s.Logs()) {
		t.Errorf("failure to bind not recognised (exited %v):\n%s", s.proc.hasExited(), s.Logs())
	}
}
