package main

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// checkOutput writes the report and, on a terminal, a progress line on
// stderr; both go through one lock so that they never interleave.
type checkOutput struct {
	stdout, stderr io.Writer
	format         string
	colour         bool

	mu              sync.Mutex
	progressOn      bool
	progressShown   bool
	targets, done   int
	planned, probes int
	stopProgress    chan struct{}
	progressDone    chan struct{}
}

func newCheckOutput(stdout, stderr io.Writer, format string, long bool) *checkOutput {
	return &checkOutput{
		stdout: stdout, stderr: stderr, format: format,
		colour:     isTerminal(stdout) && colourWanted(),
		progressOn: long && isTerminal(stderr),
	}
}

// start shows progress every half second until finish.
func (o *checkOutput) start(targets, planned int) {
	o.targets, o.planned = targets, planned
	if !o.progressOn {
		return
	}
	o.stopProgress, o.progressDone = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(o.progressDone)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-o.stopProgress:
				return
			case <-tick.C:
				o.mu.Lock()
				fmt.Fprintf(o.stderr, "\r\033[Kchecking: %d of %d targets done, %d of about %d probes", o.done, o.targets, o.probes, o.planned)
				o.progressShown = true
				o.mu.Unlock()
			}
		}
	}()
}

func (o *checkOutput) probed() {
	o.mu.Lock()
	o.probes++
	o.mu.Unlock()
}

// clearProgressLocked erases the progress line before other output.
func (o *checkOutput) clearProgressLocked() {
	if o.progressShown {
		fmt.Fprint(o.stderr, "\r\033[K")
		o.progressShown = false
	}
}

// target prints one target's text report as soon as it is its turn.
func (o *checkOutput) target(p *checkPlan, tr *targetRun) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.done++
	if o.format != "text" {
		return
	}
	o.clearProgressLocked()
	writeTargetText(o.stdout, p.targetReport(tr), o.colour)
}

// finish stops the progress line and writes what comes after the targets.
func (o *checkOutput) finish(rep checkReport) error {
	if o.stopProgress != nil {
		close(o.stopProgress)
		<-o.progressDone
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.clearProgressLocked()
	if o.format == "json" {
		return writeJSON(o.stdout, rep)
	}
	return writeSummaryText(o.stdout, rep)
}
