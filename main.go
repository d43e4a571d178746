// Command resumption_exporter probes the TLS session-resumption posture of
// servers for Prometheus, in the manner of blackbox_exporter.
package main

import (
	"context"
	_ "embed"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/resumption-exporter/resumption_exporter/collector"
	"github.com/resumption-exporter/resumption_exporter/collector/history"
	"github.com/resumption-exporter/resumption_exporter/internal/prober"
	"github.com/resumption-exporter/resumption_exporter/probe"
)

// defaultConfig is config.yml, built in so the exporter runs with no file.
//
//go:embed config.yml
var defaultConfig []byte

const exporterName = "resumption_exporter"

func main() {
	stampVersion()
	os.Exit(run(os.Args[1:]))
}

type options struct {
	configFile    string
	configCheck   bool
	timeoutOffset time.Duration
	historyPath   string
	activeWindow  time.Duration
	retention     time.Duration
	maxTargets    int
	saveInterval  time.Duration

	allowedTargets []string
	allowList      *probe.AllowList // parsed from allowedTargets by run
	maxConcurrent  int
	maxPerTarget   int
}

// validate rejects durations and sizes that would break the exporter later.
func (o options) validate() error {
	for name, d := range map[string]time.Duration{
		"--history.active-window": o.activeWindow, "--history.retention": o.retention, "--history.save-interval": o.saveInterval,
	} {
		if d <= 0 {
			return fmt.Errorf("%s must be positive, got %s", name, d)
		}
	}
	if o.timeoutOffset < 0 {
		return fmt.Errorf("--timeout-offset must not be negative, got %s", o.timeoutOffset)
	}
	if o.maxTargets <= 0 {
		return fmt.Errorf("--history.max-targets must be positive, got %d", o.maxTargets)
	}
	if o.maxConcurrent < 0 {
		return fmt.Errorf("--probe.max-concurrent must not be negative, got %d", o.maxConcurrent)
	}
	if o.maxPerTarget <= 0 {
		return fmt.Errorf("--probe.max-concurrent-per-target must be positive, got %d", o.maxPerTarget)
	}
	return nil
}

func run(args []string) int {
	app := kingpin.New(exporterName, "Prometheus exporter for the TLS session-resumption posture of servers.")
	var o options
	app.Flag("config.file", "Configuration file. Default: the config.yml built into the binary.").StringVar(&o.configFile)
	app.Flag("config.check", "Validate the configuration and exit.").BoolVar(&o.configCheck)
	app.Flag("timeout-offset", "Subtracted from Prometheus' scrape timeout to get the probe timeout.").Default("0.5s").DurationVar(&o.timeoutOffset)
	app.Flag("history.path", "File that keeps the ticket-key history across restarts, with its journal PATH.journal beside it; its directory must exist and be writable. Without it the \"not rotated within a day\" alert is blind for a day after every restart.").StringVar(&o.historyPath)
	app.Flag("history.active-window", "A ticket key is active while seen within this window; a few scrape intervals.").Default("15m").DurationVar(&o.activeWindow)
	app.Flag("history.retention", "Forget a target's key history when it has not been probed for this long.").Default("168h").DurationVar(&o.retention)
	app.Flag("history.max-targets", "Most (target, module, server name) histories and session stores kept in memory; the one least recently seen with a ticket key (or a session) goes first. Probes that saw none add nothing.").Default("10000").IntVar(&o.maxTargets)
	app.Flag("history.save-interval", "How often --history.path is rewritten, with the last-seen times, and its journal emptied. First sightings and rotations are journaled at once.").Default("1m").DurationVar(&o.saveInterval)
	app.Flag("probe.allowed-targets", "Targets that may be probed, repeatable: ADDRESS-OR-CIDR[:PORT[-PORT]] (IPv6 in brackets), checked against the address dialed, or HOSTNAME-GLOB[:PORT[-PORT]], checked against the target's name. Applies together with allowed_targets in the configuration file: a probe must pass both. None: every target may be probed.").PlaceHolder("ENTRY").StringsVar(&o.allowedTargets)
	app.Flag("probe.max-concurrent", "Most probes running at once; more are refused with 503. 0: half the file descriptors above 64, at 4 per probe, at most 1000.").Default("0").IntVar(&o.maxConcurrent)
	app.Flag("probe.max-concurrent-per-target", "Most probes of one target (host:port) running at once; more are refused with 503.").Default("4").IntVar(&o.maxPerTarget)
	webConfig := kingpinflag.AddFlags(app, ":10517")
	logConfig := &promslog.Config{}
	promslogflag.AddFlags(app, logConfig)
	app.Version(version.Print(exporterName))
	app.HelpFlag.Short('h')
	// Serving is the default command, so that flag-only invocations keep
	// starting the exporter.
	app.Command("serve", "Run the exporter (the default command).").Default()
	check := addCheckCommand(app)
	command, err := app.Parse(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	logger := promslog.New(logConfig)
	if err := o.validate(); err != nil {
		logger.Error("Invalid flags", "err", err)
		return 2
	}
	if o.allowList, err = probe.ParseAllowList("--probe.allowed-targets", o.allowedTargets); err != nil {
		logger.Error("Invalid flags", "err", err)
		return 2
	}
	if command == check.name() {
		return check.run(o, logger)
	}

	sc := &SafeConfig{}
	if err := sc.Load(o.configFile); err != nil {
		logger.Error("Error loading config", "err", err)
		return 1
	}
	if o.configCheck {
		logger.Info("Config file is ok, exiting...", "file", describe(o.configFile))
		return 0
	}
	logger.Info("Starting "+exporterName, "version", version.Info(), "config", describe(o.configFile))
	logger.Info("Build context", "build_context", version.BuildContext())

	e, err := newExporter(sc, o, logger)
	if err != nil {
		logger.Error("Cannot keep the key history in --history.path", "path", o.historyPath, "err", err)
		return 1
	}
	defer e.closeHistory()
	e.admission.logPolicy()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP) // before anything can send one
	go e.watchReloads(ctx, hup)
	saved := make(chan struct{})
	go func() { e.saveLoop(ctx); close(saved) }()

	srv := &http.Server{Handler: e.mux(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- web.ListenAndServe(srv, webConfig, logger) }()
	select {
	case err := <-errc:
		logger.Error("Error running HTTP server", "err", err)
		stop()
		<-saved
		return 1
	case <-ctx.Done():
		logger.Info("Shutting down")
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdownCtx)
		<-saved
		return 0
	}
}

// exporter is everything main wires together.
type exporter struct {
	opts      options
	config    *SafeConfig
	logger    *slog.Logger
	registry  *prometheus.Registry
	history   *history.KeyHistory
	prober    *probeHandler
	admission *admission
	reloads   chan chan error
	stopping  chan struct{} // closed when the reload loop has stopped

	reloadOK   prometheus.Gauge
	reloadTime prometheus.Gauge
}

func newExporter(sc *SafeConfig, o options, logger *slog.Logger) (*exporter, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(versioncollector.NewCollector(exporterName))
	reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	keys, err := openHistory(o, logger)
	if err != nil {
		return nil, err
	}
	collector.NewHistoryMetrics(reg, keys)
	e := &exporter{
		opts: o, config: sc, logger: logger, registry: reg, history: keys,
		reloads:  make(chan chan error),
		stopping: make(chan struct{}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "resumption_exporter_config_last_reload_successful",
			Help: "Whether the last configuration reload attempt was successful.",
		}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "resumption_exporter_config_last_reload_success_timestamp_seconds",
			Help: "Timestamp of the last successful configuration reload.",
		}),
	}
	reg.MustRegister(e.reloadOK, e.reloadTime)
	e.reloadOK.Set(1)
	e.reloadTime.SetToCurrentTime()
	probes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "resumption_exporter_probes_total",
		Help: "Probes run, by module and result (success, failure).",
	}, []string{"module", "result"})
	reg.MustRegister(probes)
	e.prober = &probeHandler{
		config: sc, timeoutOffset: o.timeoutOffset, probes: probes,
		prober: prober.New(probe.NewSessions(probe.SessionsOptions{
			MaxTargets: o.maxTargets, MaxAge: o.retention, ResumedWindow: o.activeWindow,
		}), keys, logger),
	}
	e.admission = newAdmission(reg, o.allowList, sc, sizeLimiter(o, logger), logger)
	return e, nil
}

// openHistory returns the key history: in memory only without
// --history.path, else kept in that file and its journal (an error when it
// cannot be written).
func openHistory(o options, logger *slog.Logger) (*history.KeyHistory, error) {
	opts := history.Options{
		ActiveWindow: o.activeWindow, MaxTargets: o.maxTargets, Retention: o.retention, Logger: logger,
	}
	if o.historyPath == "" {
		return history.New(opts), nil
	}
	return history.Open(o.historyPath, opts)
}

// closeHistory saves the key history a last time, once no probe runs.
func (e *exporter) closeHistory() {
	if e.opts.historyPath == "" {
		return
	}
	if err := e.history.Close(); err != nil {
		e.logger.Error("Cannot save key history", "path", e.opts.historyPath, "err", err)
	}
}

// reload re-reads the configuration; a bad file keeps the old one.
func (e *exporter) reload() error {
	if err := e.config.Load(e.opts.configFile); err != nil {
		e.reloadOK.Set(0)
		e.logger.Error("Error reloading config", "err", err)
		return err
	}
	e.reloadOK.Set(1)
	e.reloadTime.SetToCurrentTime()
	e.logger.Info("Reloaded config", "file", describe(e.opts.configFile))
	e.admission.logPolicy()
	return nil
}

// watchReloads serialises reloads asked for by SIGHUP and by /-/reload.
func (e *exporter) watchReloads(ctx context.Context, hup chan os.Signal) {
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			close(e.stopping)
			return
		case <-hup:
			e.reload()
		case reply := <-e.reloads:
			reply <- e.reload()
		}
	}
}

// saveLoop compacts the key history every save interval: the file gets the
// last-seen times, and the journal (which already holds every first
// sighting and rotation) is emptied. The last save is closeHistory's.
func (e *exporter) saveLoop(ctx context.Context) {
	if e.opts.historyPath == "" {
		<-ctx.Done()
		return
	}
	tick := time.NewTicker(e.opts.saveInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			e.history.Expire()
			if err := e.history.Save(); err != nil {
				e.logger.Error("Cannot save key history", "path", e.opts.historyPath, "err", err)
			}
		}
	}
}

func (e *exporter) mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(e.registry, promhttp.HandlerOpts{Registry: e.registry}))
	mux.Handle("/probe", e.admission.wrap(e.prober))
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "Healthy")
	})
	mux.HandleFunc("/-/reload", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost && r.Method != http.MethodPut {
			w.Header().Set("Allow", "POST, PUT")
			http.Error(w, "This endpoint requires a POST request.", http.StatusMethodNotAllowed)
			return
		}
		reply := make(chan error, 1)
		select {
		case e.reloads <- reply:
		case <-r.Context().Done():
			return
		case <-e.stopping:
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		if err := <-reply; err != nil {
			http.Error(w, fmt.Sprintf("failed to reload config: %s", err), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("/config", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(e.config.Raw())
	})
	mux.Handle("/", landingPage(e.config, e.logger))
	return mux
}
