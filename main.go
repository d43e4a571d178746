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
	return nil
}

func run(args []string) int {
	app := kingpin.New(exporterName, "Prometheus exporter for the TLS session-resumption posture of servers.")
	var o options
	app.Flag("config.file", "Configuration file. Default: the config.yml built into the binary.").StringVar(&o.configFile)
	app.Flag("config.check", "Validate the configuration and exit.").BoolVar(&o.configCheck)
	app.Flag("timeout-offset", "Subtracted from Prometheus' scrape timeout to get the probe timeout.").Default("0.5s").DurationVar(&o.timeoutOffset)
	app.Flag("history.path", "File that keeps the ticket-key history across restarts. Without it the \"not rotated within a day\" alert is blind for a day after every restart.").StringVar(&o.historyPath)
	app.Flag("history.active-window", "A ticket key is active while seen within this window; a few scrape intervals.").Default("15m").DurationVar(&o.activeWindow)
	app.Flag("history.retention", "Forget a target's key history when it has not been probed for this long.").Default("168h").DurationVar(&o.retention)
	app.Flag("history.max-targets", "Most (target, module) histories and session stores kept in memory; the least recently probed go first.").Default("10000").IntVar(&o.maxTargets)
	app.Flag("history.save-interval", "How often --history.path is rewritten when only last-seen times changed.").Default("1m").DurationVar(&o.saveInterval)
	webConfig := kingpinflag.AddFlags(app, ":10517")
	logConfig := &promslog.Config{}
	promslogflag.AddFlags(app, logConfig)
	app.Version(version.Print(exporterName))
	app.HelpFlag.Short('h')
	if _, err := app.Parse(args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	logger := promslog.New(logConfig)
	if err := o.validate(); err != nil {
		logger.Error("Invalid flags", "err", err)
		return 2
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

	e := newExporter(sc, o, logger)
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
	opts     options
	config   *SafeConfig
	logger   *slog.Logger
	registry *prometheus.Registry
	history  *history.KeyHistory
	hmetrics *collector.HistoryMetrics
	prober   *probeHandler
	reloads  chan chan error
	stopping chan struct{} // closed when the reload loop has stopped

	reloadOK   prometheus.Gauge
	reloadTime prometheus.Gauge
}

func newExporter(sc *SafeConfig, o options, logger *slog.Logger) *exporter {
	reg := prometheus.NewRegistry()
	reg.MustRegister(versioncollector.NewCollector(exporterName))
	reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	keys := history.New(history.Options{
		ActiveWindow: o.activeWindow, MaxTargets: o.maxTargets, Retention: o.retention,
	})
	if o.historyPath != "" {
		if err := keys.ReadFile(o.historyPath); err != nil {
			// Keep the unreadable file for a post-mortem (or a newer
			// exporter after a downgrade) instead of overwriting it.
			kept := fmt.Sprintf("%s.bad-%d", o.historyPath, time.Now().Unix())
			if rerr := os.Rename(o.historyPath, kept); rerr != nil {
				kept = "(could not keep it: " + rerr.Error() + ")"
			}
			logger.Error("Cannot read key history; starting with an empty one", "path", o.historyPath, "kept_as", kept, "err", err)
		}
	}
	e := &exporter{
		opts: o, config: sc, logger: logger, registry: reg, history: keys,
		hmetrics: collector.NewHistoryMetrics(reg, keys),
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
	return e
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

// saveLoop writes the key history at once when a key appears or rotates, so
// that a crash loses no first-seen time, and otherwise every save interval;
// and a last time at shutdown.
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
			e.save()
			return
		case <-e.history.Changed():
			// Coalesce a burst (many new targets at once) into one
			// write a second; Changed stays pending meanwhile.
			select {
			case <-time.After(saveCoalesce):
			case <-ctx.Done():
			}
			e.save()
		case <-tick.C:
			e.history.Expire()
			e.save()
		}
	}
}

// saveCoalesce is the shortest gap between two saves triggered by new keys.
const saveCoalesce = time.Second

func (e *exporter) save() {
	if err := e.history.WriteFile(e.opts.historyPath); err != nil {
		e.hmetrics.SaveFailed()
		e.logger.Error("Cannot save key history", "path", e.opts.historyPath, "err", err)
	}
}

func (e *exporter) mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(e.registry, promhttp.HandlerOpts{Registry: e.registry}))
	mux.Handle("/probe", e.prober)
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
	landing, err := web.NewLandingPage(web.LandingConfig{
		Name:        exporterName,
		Description: "Prometheus exporter for the TLS session-resumption posture of servers",
		Version:     version.Info(),
		Form: web.LandingForm{
			Action: "probe",
			Inputs: []web.LandingFormInput{
				{Label: "Target", Type: "text", Name: "target", Placeholder: "host:port", Value: "example.com:443"},
				{Label: "Module", Type: "text", Name: "module", Placeholder: "module", Value: defaultModuleName},
				{Label: "Debug", Type: "checkbox", Name: "debug", Value: "true"},
			},
		},
		Links: []web.LandingLinks{
			{Address: "metrics", Text: "Metrics"},
			{Address: "config", Text: "Configuration"},
		},
	})
	if err != nil {
		e.logger.Error("Cannot build landing page", "err", err)
	} else {
		mux.Handle("/", landing)
	}
	return mux
}
