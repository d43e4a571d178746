package testservers

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// procStat is what /proc/PID/stat says about a process that matters for
// finding and stopping a server's workers.
type procStat struct {
	pid   int
	state byte // 'R', 'S', 'Z', ...
	ppid  int
	pgrp  int
	// start is the start time in clock ticks since boot; with pid it names a
	// process unambiguously, so a recycled PID is never mistaken for it.
	start uint64
}

// readProcStat parses /proc/PID/stat. The command name is in parentheses and
// may itself contain spaces and parentheses, so fields are counted from the
// last ')'.
func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	// Fields after the name, numbered as in proc(5) from 3 (state).
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %d fields after the name, want at least 20", pid, len(f))
	}
	st := procStat{pid: pid, state: f[0][0]}
	if st.ppid, err = strconv.Atoi(f[1]); err != nil {
		return procStat{}, fmt.Errorf("/proc/%d/stat: ppid: %w", pid, err)
	}
	if st.pgrp, err = strconv.Atoi(f[2]); err != nil {
		return procStat{}, fmt.Errorf("/proc/%d/stat: pgrp: %w", pid, err)
	}
	if st.start, err = strconv.ParseUint(f[19], 10, 64); err != nil {
		return procStat{}, fmt.Errorf("/proc/%d/stat: starttime: %w", pid, err)
	}
	return st, nil
}

// allProcs lists every running process (see running). Processes that exit while
// /proc is read are left out.
func allProcs() ([]procStat, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []procStat
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readProcStat(pid)
		if err != nil || !running(st) {
			continue
		}
		out = append(out, st)
	}
	return out, nil
}

// childPIDs returns the live children of pid, sorted: a server master's
// workers.
func childPIDs(pid int) []int {
	procs, err := allProcs()
	if err != nil {
		return nil
	}
	var out []int
	for _, p := range procs {
		if p.ppid == pid {
			out = append(out, p.pid)
		}
	}
	slices.Sort(out)
	return out
}

// family returns pid, its live descendants and the live members of its
// process group: everything a server started, even workers that were
// reparented after their master died.
func family(pid int) []procStat {
	procs, err := allProcs()
	if err != nil {
		return nil
	}
	in := map[int]bool{pid: true}
	// Descendants: repeat until no new process joins; the depth of a
	// process tree bounds the passes.
	for pass := 0; pass < len(procs); pass++ {
		grew := false
		for _, p := range procs {
			if !in[p.pid] && (in[p.ppid] || p.pgrp == pid) {
				in[p.pid] = true
				grew = true
			}
		}
		if !grew {
			break
		}
	}
	var out []procStat
	for _, p := range procs {
		if in[p.pid] {
			out = append(out, p)
		}
	}
	return out
}

// alive reports whether the process p names still runs: same PID, same
// start time, and running per running().
func alive(p procStat) bool {
	st, err := readProcStat(p.pid)
	return err == nil && st.start == p.start && running(st)
}

// running reports whether a process still has a thread that runs. A zombie
// main thread is not enough to call a process dead: when the main thread of
// a multi-threaded server (an HAProxy worker) exits first, it shows 'Z'
// while the other threads still hold the listening socket.
func running(st procStat) bool {
	if st.state != 'Z' && st.state != 'X' {
		return true
	}
	tasks, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(st.pid), "task"))
	if err != nil {
		return false
	}
	for _, task := range tasks {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(st.pid), "task", task.Name(), "stat"))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) {
			continue
		}
		if state := b[i+2]; state != 'Z' && state != 'X' {
			return true
		}
	}
	return false
}

// cmdline returns the process's command line with NULs as spaces: nginx
// rewrites it to say "worker process is shutting down".
func cmdline(pid int) string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
}
