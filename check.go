package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/resumption-exporter/resumption_exporter/collector/findings"
	"github.com/resumption-exporter/resumption_exporter/collector/history"
	"github.com/resumption-exporter/resumption_exporter/internal/prober"
	"github.com/resumption-exporter/resumption_exporter/probe"
)

// Exit statuses of `check`.
const (
	checkPassed    = 0 // no finding at or above --fail-on
	checkFindings  = 1 // some finding at or above --fail-on
	checkCannotRun = 2 // bad flags, config, target, or a target that could not be probed
)

// checkParallel bounds the targets probed at once.
const checkParallel = 4

// watchWindowProbes: during --watch a ticket key is active while seen within
// this many intervals, so that a balancer alternating between backends with
// different keys is not read as rotation.
const watchWindowProbes = 3

// checkCommand is `resumption_exporter check`: the exporter's probe and
// findings for a terminal or a CI pipeline, without Prometheus.
type checkCommand struct {
	clause        *kingpin.CmdClause
	module        string
	serverName    string
	format        string
	failOn        string
	watch         time.Duration
	watchInterval time.Duration
	targets       []string

	stdout, stderr io.Writer
	// pause waits between the probes of a watch until the next slot and
	// reports whether to go on; nil is sleepUntil. Tests act in it while no
	// probe runs.
	pause func(ctx context.Context, until time.Time) bool
}

func addCheckCommand(app *kingpin.Application) *checkCommand {
	c := &checkCommand{stdout: os.Stdout, stderr: os.Stderr}
	c.clause = app.Command("check", "Probe targets now and print their resumption posture and findings; "+
		"exit 0 when no finding reaches --fail-on, 1 when one does, 2 when a target could not be checked.")
	c.clause.Flag("module", "Module of --config.file to probe with.").Default(defaultModuleName).StringVar(&c.module)
	c.clause.Flag("server-name", "SNI and certificate name for this check; overrides the module's tls_config.server_name.").StringVar(&c.serverName)
	c.clause.Flag("format", "Output format: text or json.").Default("text").EnumVar(&c.format, "text", "json")
	c.clause.Flag("fail-on", "Lowest finding severity that makes the check fail (exit 1): info, warning or critical.").
		Default("warning").EnumVar(&c.failOn, "info", "warning", "critical")
	c.clause.Flag("watch", "Probe repeatedly for this long and report the ticket-key changes seen; 0 probes once.").Default("0s").DurationVar(&c.watch)
	c.clause.Flag("watch.interval", "Time between probes with --watch.").Default("30s").DurationVar(&c.watchInterval)
	c.clause.Arg("target", "host:port to check; several are checked concurrently and reported in this order.").Required().StringsVar(&c.targets)
	return c
}

func (c *checkCommand) name() string { return c.clause.FullCommand() }

// run checks the targets and returns the exit status.
func (c *checkCommand) run(o options, logger *slog.Logger) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return c.runContext(ctx, o, logger)
}

func (c *checkCommand) runContext(ctx context.Context, o options, logger *slog.Logger) int {
	plan, err := c.plan(o, logger)
	if err != nil {
		fmt.Fprintf(c.stderr, "check: %v\n", err)
		return checkCannotRun
	}
	out := newCheckOutput(c.stdout, c.stderr, c.format, len(c.targets) > 1 || c.watch > 0)
	runs := plan.checkAll(ctx, out)
	rep := plan.report(runs)
	if err := out.finish(rep); err != nil {
		fmt.Fprintf(c.stderr, "check: writing the report: %v\n", err)
		return checkCannotRun
	}
	for _, t := range rep.Targets {
		if !t.Checked {
			fmt.Fprintf(c.stderr, "check: %s: %s\n", t.Target, t.Error)
		}
	}
	return rep.Summary.ExitCode
}

// checkPlan is everything a check needs, validated before the first probe.
type checkPlan struct {
	moduleName string
	module     probe.Module
	failOn     findings.Severity
	targets    []string
	watch      time.Duration
	interval   time.Duration
	logger     *slog.Logger
	sessions   *probe.Sessions
	// history is the ticket-key history the check observes into, in
	// memory only; nil for a single probe without --history.path.
	history       *history.KeyHistory
	historySource string
	historyWindow time.Duration
	pause         func(ctx context.Context, until time.Time) bool
}

// Sources of a check's key history, as the JSON report names them.
const (
	historyNone  = "none"
	historyFile  = "history_file"
	historyWatch = "watch"
)

func (c *checkCommand) plan(o options, logger *slog.Logger) (*checkPlan, error) {
	failOn, err := findings.ParseSeverity(c.failOn)
	if err != nil {
		return nil, fmt.Errorf("--fail-on: %w", err)
	}
	if c.watch < 0 {
		return nil, fmt.Errorf("--watch must not be negative, got %s", c.watch)
	}
	if c.watch > 0 && (c.watchInterval <= 0 || c.watchInterval > c.watch) {
		return nil, fmt.Errorf("--watch.interval %s must be positive and at most --watch %s: a key change takes two probes to see", c.watchInterval, c.watch)
	}
	// Each target in its canonical spelling, as the exporter keys sessions,
	// history and logs: "Example.COM.:443" reads the history of
	// "example.com:443".
	targets := make([]string, len(c.targets))
	for i, s := range c.targets {
		t, err := probe.ParseTarget(s)
		if err != nil {
			return nil, err
		}
		targets[i] = t.String()
	}
	sc := &SafeConfig{}
	if err := sc.Load(o.configFile); err != nil {
		return nil, err
	}
	m, ok := sc.Module(c.module)
	if !ok {
		return nil, fmt.Errorf("unknown module %q in %s (it has %s)", c.module, describe(o.configFile), strings.Join(moduleNames(sc.Modules()), ", "))
	}
	if c.serverName != "" {
		m.TLSConfig.ServerName = c.serverName
	}
	p := &checkPlan{
		moduleName: c.module, module: m, failOn: failOn, targets: targets,
		watch: c.watch, interval: c.watchInterval, logger: logger,
		sessions:      probe.NewSessions(probe.SessionsOptions{}),
		historySource: historyNone,
		pause:         c.pause,
	}
	if p.pause == nil {
		p.pause = sleepUntil
	}
	if err := p.openHistory(o); err != nil {
		return nil, err
	}
	return p, nil
}

// openHistory loads --history.path, read only, or starts an in-memory history
// for --watch. The file is never written: the exporter owns it.
func (p *checkPlan) openHistory(o options) error {
	switch {
	case o.historyPath != "":
		if _, err := os.Stat(o.historyPath); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("--history.path %s does not exist (check only reads the exporter's history)", o.historyPath)
		}
		p.historyWindow = o.activeWindow
		p.history = history.New(history.Options{
			ActiveWindow: o.activeWindow, MaxTargets: o.maxTargets, Retention: o.retention,
		})
		if err := p.history.ReadFile(o.historyPath); err != nil {
			return err
		}
		p.historySource = historyFile
	case p.watch > 0:
		p.historyWindow = watchWindowProbes * p.interval
		p.history = history.New(history.Options{ActiveWindow: p.historyWindow})
		p.historySource = historyWatch
	}
	return nil
}

// probe is the check's one call of probe.Run.
func (p *checkPlan) probe(ctx context.Context, target string) probe.Result {
	return probe.Run(ctx, target, p.moduleName, &p.module, p.sessions, p.logger.With("target", target, "module", p.moduleName))
}

// observe records a probe's key names; nil when the check keeps no history.
func (p *checkPlan) observe(target string, r *probe.Result) *history.KeyState {
	if p.history == nil {
		return nil
	}
	st := p.history.ObserveServerName(target, p.moduleName, prober.HistoryServerName(r), r.KeyNames)
	return &st
}

// targetRun is what the probes of one target showed.
type targetRun struct {
	target     string
	start, end time.Time
	probes     int
	failed     int
	failure    string       // the last probe failure
	last       probe.Result // the last successful probe, else the last one
	succeeded  bool
	keys       *history.KeyState
	found      map[string]findings.Finding // by ID and subject, the latest of each
	sightings  []keySighting
}

// keySighting is one ticket key as a --watch saw it.
type keySighting struct {
	fingerprint         uint64
	firstSeen, lastSeen time.Time
	probes              int
}

// checkAll checks every target, checkParallel at once, and hands each run to
// out in argument order as soon as it and all before it are done.
func (p *checkPlan) checkAll(ctx context.Context, out *checkOutput) []*targetRun {
	runs := make([]*targetRun, len(p.targets))
	done := make([]chan struct{}, len(p.targets))
	sem := make(chan struct{}, checkParallel)
	out.start(len(p.targets), p.probesPlanned())
	for i, t := range p.targets {
		done[i] = make(chan struct{})
		go func() {
			defer close(done[i])
			sem <- struct{}{}
			defer func() { <-sem }()
			runs[i] = p.checkTarget(ctx, t, out)
		}()
	}
	for i := range p.targets {
		<-done[i]
		out.target(p, runs[i])
	}
	return runs
}

func (p *checkPlan) probesPlanned() int {
	n := 1
	if p.watch > 0 {
		n += int(p.watch / p.interval)
	}
	return n * len(p.targets)
}

// checkTarget probes once, or every interval for the watch duration, and
// gathers what the probes showed. An interrupt ends a watch early with what
// was seen so far.
func (p *checkPlan) checkTarget(ctx context.Context, target string, out *checkOutput) *targetRun {
	tr := &targetRun{target: target, start: time.Now(), found: map[string]findings.Finding{}}
	deadline := tr.start.Add(p.watch)
	for {
		r := p.probe(ctx, target)
		if ctx.Err() != nil && tr.probes > 0 {
			break // interrupted mid-probe: its failure is ours, not the target's
		}
		tr.add(r, p.observe(target, &r), time.Now())
		out.probed()
		if p.watch == 0 {
			break
		}
		next := nextSlot(tr.start, p.interval, time.Now())
		if next.After(deadline) || !p.pause(ctx, next) {
			break
		}
	}
	tr.end = time.Now()
	return tr
}

// sleepUntil waits until t and reports false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// nextSlot is the first start+k·interval after now: a probe slower than the
// interval skips the slots it overran instead of bunching the next ones.
func nextSlot(start time.Time, interval time.Duration, now time.Time) time.Time {
	k := now.Sub(start)/interval + 1
	return start.Add(k * interval)
}

func (tr *targetRun) add(r probe.Result, keys *history.KeyState, now time.Time) {
	tr.probes++
	if r.Success {
		tr.succeeded = true
		tr.last = r
	} else {
		tr.failed++
		tr.failure = r.Failure
		if !tr.succeeded {
			tr.last = r
		}
	}
	tr.keys = keys
	for _, f := range findings.Evaluate(&r, keys, now, findings.DefaultThresholds) {
		tr.found[f.ID+"\x00"+f.Subject] = f
	}
	for _, kn := range r.KeyNames {
		i := slices.IndexFunc(tr.sightings, func(s keySighting) bool { return s.fingerprint == kn.Fingerprint })
		if i < 0 {
			tr.sightings = append(tr.sightings, keySighting{fingerprint: kn.Fingerprint, firstSeen: r.Start})
			i = len(tr.sightings) - 1
		}
		tr.sightings[i].lastSeen = r.Start
		tr.sightings[i].probes++
	}
}

// findings returns what any probe of the target found, most severe first.
func (tr *targetRun) findings() []findings.Finding {
	fs := make([]findings.Finding, 0, len(tr.found))
	for _, f := range tr.found {
		fs = append(fs, f)
	}
	findings.Sort(fs)
	return fs
}
