// Command embedded shows luamods embedded in a Go server: the server loads
// an engine, mounts the modules' web resources and the admin API on its own
// echo instance, and calls eng.Invoke at one of its hook points. It hands
// its user directory (a Go value) to the modules, which see it as
// host.users (whois.lua), and serves the module routes on a plain net/http
// server too (-nethttp), for servers that do not use echo.
//
//	go run ./examples/embedded -listen 127.0.0.1:8009 -nethttp 127.0.0.1:8010
//
// It also serves GET /native/hello, the same answer as the Lua route
// /_synapse/client/hello written in Go, so that tools/bench/http.sh can
// compare the two in one process.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"

	"luamods/engine"
	"luamods/httpbridge"
)

func main() {
	_, here, _, _ := runtime.Caller(0)
	config := flag.String("c", filepath.Join(filepath.Dir(here), "luamods.yaml"), "luamods configuration")
	listen := flag.String("listen", "127.0.0.1:8009", "address to listen on")
	netHTTP := flag.String("nethttp", "", "address of a net/http server with the module routes too (off when empty)")
	flag.Parse()
	if err := run(*config, *listen, *netHTTP); err != nil {
		fmt.Fprintln(os.Stderr, "embedded:", err)
		os.Exit(1)
	}
}

// userDirectory is the server's own data, handed to the modules as
// host.users: its exported methods are callable from Lua.
type userDirectory struct{ departments map[string]string }

// Department returns the department of a user, or an error for a user the
// directory does not know (Lua receives it as a second value).
func (d *userDirectory) Department(userID string) (string, error) {
	if dept, ok := d.departments[userID]; ok {
		return dept, nil
	}
	return "", fmt.Errorf("unknown user %s", userID)
}

func run(config, listen, netHTTP string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	// 1. Load the modules.
	users := &userDirectory{departments: map[string]string{"@alice:example.com": "sales", "@bob:example.com": "support"}}
	eng, err := engine.New(ctx, engine.Options{ConfigPath: config, Logger: log, Expose: map[string]any{"users": users}})
	if err != nil {
		return err
	}
	defer eng.Close()

	// 2. The server's own routes, and the modules' next to them.
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.POST("/rooms/:room/send", sendMessage(eng))
	e.GET("/native/hello", nativeHello)
	bridge := httpbridge.New(eng)
	bridge.Mount(e)

	// 3. Or the module routes on a net/http server (chi works the same):
	// the bridge is an http.Handler.
	if netHTTP != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /native/hello", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, "{\"message\":%q}\n", "hello, "+r.URL.Query().Get("name"))
		})
		mux.Handle("/_synapse/client/", bridge)
		ln, err := net.Listen("tcp", netHTTP) // listening before the echo server starts
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("net/http server", "error", err)
			}
		}()
		defer srv.Close()
	}

	// SIGHUP reloads the modules.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			if _, err := eng.Reload(ctx); err != nil {
				log.Error("reload failed", "error", err)
			}
		}
	}()

	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.Shutdown(sctx)
	}()
	fmt.Fprintln(os.Stderr, "listening on", listen)
	if err := e.Start(listen); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// sendMessage is a hook point: before "sending" a message the server asks
// the modules' spam checkers, as Synapse does.
func sendMessage(eng *engine.Engine) echo.HandlerFunc {
	return func(c echo.Context) error {
		var content map[string]any
		if err := c.Bind(&content); err != nil {
			return c.JSON(http.StatusBadRequest, map[string]any{"errcode": "M_NOT_JSON", "error": "Content not JSON."})
		}
		event := map[string]any{"type": "m.room.message", "room_id": c.Param("room"), "sender": "@user:example.com", "content": content}
		verdict, err := eng.CheckEventForSpam(c.Request().Context(), event)
		if err != nil {
			status, body := engine.HTTPAnswer(err)
			return c.JSON(status, body)
		}
		if !verdict.Allowed {
			return c.JSON(http.StatusForbidden, verdict.Body("This message has been rejected as probable spam"))
		}
		return c.JSON(http.StatusOK, map[string]any{"event_id": "$sent"})
	}
}

// nativeHello is the Lua route /_synapse/client/hello written in Go.
func nativeHello(c echo.Context) error {
	name := c.QueryParam("name")
	if name == "" {
		name = "world"
	}
	return c.JSON(http.StatusOK, map[string]any{"message": "hello, " + name})
}
