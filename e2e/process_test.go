package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Bounds of the waits for the programs the test starts. They keep a broken
// program from hanging the test; nothing asserts that a program is fast.
const (
	readyTimeout = 30 * time.Second
	termWait     = 10 * time.Second
	killWait     = 5 * time.Second
	pollEvery    = 200 * time.Millisecond
	// logTail is how much of a program's output a failure message quotes.
	logTail = 8 << 10
)

// process is one program started by the test: its output goes to a file in
// its own directory, and it is stopped by PID when the test ends.
type process struct {
	name    string
	pid     int
	logPath string
	exited  chan struct{} // closed once cmd.Wait returned
	err     error         // cmd.Wait's result, once exited is closed
}

// startProcess runs bin with args in dir, output to dir/NAME.log. Cleanup
// stops it (SIGTERM, a bounded wait, SIGKILL) and, when the test failed,
// logs the tail of its output.
func startProcess(t *testing.T, name, dir, bin string, args ...string) *process {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	out, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("creating %s: %v", logPath, err)
	}
	defer out.Close() // the child holds its own copy
	fmt.Fprintf(out, "== e2e: %s %s\n", bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	// A process group of its own keeps terminal signals meant for `go
	// test` away from the program.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &process{name: name, pid: cmd.Process.Pid, logPath: logPath, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	// Cleanups run last-registered first: stop, then show the logs, which
	// are complete by then.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- %s (pid %d) output:\n%s", p.name, p.pid, p.logs())
		}
	})
	t.Cleanup(func() {
		if err := p.stop(); err != nil {
			t.Errorf("stopping %s: %v", p.name, err)
		}
	})
	return p
}

func (p *process) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process's PID, waits a bounded time, then sends
// SIGKILL.
func (p *process) stop() error {
	if p.hasExited() {
		return nil
	}
	if err := syscall.Kill(p.pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("SIGTERM to pid %d: %w", p.pid, err)
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(termWait):
	}
	_ = syscall.Kill(p.pid, syscall.SIGKILL)
	select {
	case <-p.exited:
		return fmt.Errorf("pid %d ignored SIGTERM for %v and was killed", p.pid, termWait)
	case <-time.After(killWait):
		return fmt.Errorf("pid %d survived SIGKILL for %v", p.pid, killWait)
	}
}

// logs returns the tail of the process's output.
func (p *process) logs() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	if len(b) > logTail {
		return fmt.Sprintf("(… %d bytes left out)\n%s", len(b)-logTail, b[len(b)-logTail:])
	}
	return string(b)
}

// waitReady polls url until it answers 200 OK, failing the test when the
// process exits first or readyTimeout passes.
func (p *process) waitReady(t *testing.T, url string) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(readyTimeout)
	var last error
	for time.Now().Before(deadline) {
		if p.hasExited() {
			t.Fatalf("%s exited before it was ready: %v\n%s", p.name, p.err, p.logs())
		}
		last = getOK(context.Background(), client, url)
		if last == nil {
			return
		}
		time.Sleep(pollEvery)
	}
	t.Fatalf("%s not ready at %s after %v: %v\n%s", p.name, url, readyTimeout, last, p.logs())
}

func getOK(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
