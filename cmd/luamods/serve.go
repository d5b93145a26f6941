package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"luamods/engine"
	"luamods/httpbridge"
)

// shutdownGrace is how long in-flight requests get after SIGTERM/SIGINT.
const shutdownGrace = 30 * time.Second

func serveCmd() *cobra.Command {
	var src configSource
	var watch bool
	cmd := &cobra.Command{
		Use:   "serve [-c luamods.yaml]",
		Short: "Run the modules: web resources, the admin and invoke API, /metrics and /health",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, cleanup, err := src.resolve(cmd.ErrOrStderr(), true)
			if err != nil {
				return err
			}
			defer cleanup()
			return serve(cmd.Context(), path, watch, src.path == "" && path != defaultConfigName, cmd.ErrOrStderr())
		},
	}
	configFlags(cmd, &src) // without either, ./luamods.yaml, else the shipped default
	cmd.Flags().BoolVar(&watch, "watch", false, "reload when the configuration or a script changes (for development)")
	return cmd
}

func serve(ctx context.Context, path string, watch, copied bool, stderr io.Writer) error {
	// Signals are caught before loading so that none is lost meanwhile.
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(signals)

	// The file is read once here; reloads read it again.
	cfg, err := engine.LoadConfig(path)
	if err != nil {
		return err
	}
	var level slog.LevelVar // log_level; a reload can change it
	setLevel(&level, cfg.LogLevel)
	log := slog.New(logHandler(cfg.LogFormat, stderr, &level))
	defer cpuProfile(log)()
	// The daemon's /metrics also shows the Go runtime and the process
	// (go_goroutines, go_memstats_*, process_resident_memory_bytes).
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	eng, err := engine.New(ctx, engine.Options{Config: cfg, ConfigPath: path, Logger: log, Registry: registry})
	if err != nil {
		return err
	}
	defer closeWithin(eng, shutdownGrace, log)
	gen := eng.Current()
	govern, stopGoverning := context.WithCancel(ctx)
	defer stopGoverning()
	governMemory(govern, eng, gen.Config.MemoryLimit, log)
	for _, m := range gen.Modules {
		log.Info("loaded module", "module", m.Name, "file", m.File, "states", m.Config.Instances, "callbacks", len(gen.Callbacks(m)))
	}
	for _, r := range gen.Routes() {
		log.Info("route", "path", r.Path, "module", r.Module.Name, "methods", allow(r.Methods), "handler", r.Where)
	}
	if hs := gen.Config.Homeserver; hs != nil {
		log.Info("homeserver", "url", hs.URL, "registration", hs.Registration, "admin_api", hs.AdminTokenPath != "")
	}
	if gen.Config.AdminToken == "" {
		log.Warn("the admin API (/_luamods/v1) is off: no admin_token or admin_token_file in the configuration")
	}
	logProtocols(log, gen.Config)
	releaseLoadGarbage()

	srv := httpbridge.NewServer(httpbridge.New(eng))
	tcp, err := net.Listen("tcp", gen.Config.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", gen.Config.Listen, err)
	}
	checkMaxConnections(log, gen.Config.MaxConnections)
	ln := limitConnections(tcp, eng, registry, log)
	log.Info("listening", "addr", ln.Addr().String(), "generation", gen.ID, "max_connections", gen.Config.MaxConnections)
	fmt.Fprintln(stderr, whatNow(gen, ln.Addr().String(), os.Getpid(), copied))
	serveErr := make(chan error, 1)
	go func() {
		srv.Listener = ln
		serveErr <- srv.Start("")
	}()

	var changes <-chan struct{}
	if watch {
		changes = watchFiles(ctx, eng, time.Second)
		log.Info("watching the configuration and scripts for changes")
	}
	logged := gen.Config // the config whose protocol endpoints and max_connections the log last described
	reload := func(reason string) {
		report, err := eng.Reload(ctx)
		switch {
		case err != nil:
			log.Error("reload failed; the previous modules keep serving", "reason", reason, "error", err.Error())
		case report.Unchanged:
			log.Info("reload: nothing changed", "reason", reason)
		default:
			cfg := eng.Current().Config
			setLevel(&level, cfg.LogLevel)
			if cfg.LogFormat != gen.Config.LogFormat {
				log.Warn("log_format changed: the new format takes effect at restart", "serving", gen.Config.LogFormat, "configured", cfg.LogFormat)
			}
			if cfg.Listen != gen.Config.Listen {
				log.Warn("listen changed: the new address takes effect at restart", "serving", gen.Config.Listen, "configured", cfg.Listen)
			}
			if cfg.MaxConnections != logged.MaxConnections {
				// Read at every accept: the new maximum applies to the next connection.
				log.Info("max_connections changed: applied to new connections", "was", logged.MaxConnections, "max_connections", cfg.MaxConnections)
				checkMaxConnections(log, cfg.MaxConnections)
				ln.Recheck()
			}
			if (cfg.HTTPAntispam == nil) != (logged.HTTPAntispam == nil) || (cfg.RestAuth == nil) != (logged.RestAuth == nil) {
				logProtocols(log, cfg)
			}
			logged = cfg
			releaseLoadGarbage()
		}
	}
	for {
		select {
		case <-changes:
			reload("files changed")
		case err := <-serveErr:
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return err
		case sig := <-signals:
			if sig == syscall.SIGHUP {
				reload("SIGHUP")
				continue
			}
			log.Info("shutting down: finishing requests in flight", "signal", sig.String(), "grace", shutdownGrace.String())
			sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
			go func() {
				// A second signal forces the exit.
				select {
				case <-signals:
					cancel()
				case <-sctx.Done():
				}
			}()
			err := httpbridge.Shutdown(sctx, srv)
			cancel()
			return err
		}
	}
}

// closeWithin closes the engine, waiting at most grace: a state stuck in Go
// code must not hold the process past its shutdown grace.
func closeWithin(eng *engine.Engine, grace time.Duration, log *slog.Logger) {
	closed := make(chan struct{})
	go func() {
		eng.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(grace):
		log.Warn("exiting with module states still running", "grace", grace.String())
	}
}

// watchFiles reports on the returned channel when the files differ from
// what the serving generation loaded (polled every interval), once per
// distinct content: a broken edit is not retried until the next edit.
func watchFiles(ctx context.Context, eng *engine.Engine, interval time.Duration) <-chan struct{} {
	changes := make(chan struct{}, 1)
	go func() {
		var tried string
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
				if !eng.Stale() {
					continue
				}
				if now := eng.Fingerprint(); now != tried {
					tried = now
					select {
					case changes <- struct{}{}:
					default:
					}
				}
			}
		}
	}()
	return changes
}

// logHandler is the log handler of log_format: slog's JSON handler for
// json, else its text handler.
func logHandler(format string, w io.Writer, level slog.Leveler) slog.Handler {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.NewJSONHandler(w, opts)
	}
	return slog.NewTextHandler(w, opts)
}

// setLevel applies log_level ("" is info).
func setLevel(v *slog.LevelVar, name string) {
	var l slog.Level
	if name != "" {
		_ = l.UnmarshalText([]byte(name))
	}
	v.Set(l)
}

func allow(methods []string) string {
	if len(methods) == 0 {
		return "*"
	}
	return fmt.Sprint(methods)
}

// logProtocols says which homeserver protocol endpoints are on
// (docs/synapse.md).
func logProtocols(log *slog.Logger, cfg *engine.Config) {
	for _, p := range []struct {
		key, path string
		on        bool
	}{
		{"http_antispam", "/_luamods/v1/http_antispam/{callback}", cfg.HTTPAntispam != nil},
		{"rest_auth", "/_matrix-internal/identity/v1/check_credentials", cfg.RestAuth != nil},
	} {
		if p.on {
			log.Info("homeserver protocol on", "endpoint", p.path)
		} else {
			log.Info("homeserver protocol off: no "+p.key+" section with authorization or authorization_path", "endpoint", p.path)
		}
	}
}
