package httpbridge

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"luamods/engine"
)

// Bridge serves an engine's modules over HTTP: an adapter between echo or
// net/http and engine.Serve, engine.Invoke and engine.Reload.
type Bridge struct {
	eng *engine.Engine
	log *slog.Logger
}

// New returns a bridge for eng.
func New(eng *engine.Engine) *Bridge {
	return &Bridge{eng: eng, log: eng.Logger()}
}

// Mount registers everything on e: module web resources (a catch-all that
// reads the current generation's route table on each request, so reloads
// need no re-registration), the admin API, the homeserver protocols,
// /metrics and /health.
func (b *Bridge) Mount(e *echo.Echo) {
	b.MountAdmin(e.Group("/_luamods/v1"))
	b.MountProtocols(e)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(b.eng.Registry(), promhttp.HandlerOpts{})))
	e.GET("/health", func(c echo.Context) error { return c.String(http.StatusOK, "OK") })
	b.MountAppservice(e)
	b.MountResources(e)
}

// MountResources registers only the modules' web resources, for servers
// that serve their own admin and metrics endpoints.
func (b *Bridge) MountResources(e *echo.Echo) {
	e.Any("/*", b.ServeResource)
	e.RouteNotFound("/*", b.ServeResource)
}

// ServeResource answers a request with the module web resource whose path
// is the request's path or the longest one above it (engine.Serve). The
// client address is echo's RealIP.
func (b *Bridge) ServeResource(c echo.Context) error {
	b.serve(c.Response(), c.Request(), c.RealIP())
	return nil
}

// ServeHTTP is the modules' web resources as an http.Handler, for net/http
// or chi servers: mount it on the paths the modules serve (or "/"). The
// client address is the connection's.
func (b *Bridge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	addr := r.RemoteAddr
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	b.serve(w, r, addr)
}

// serve hands the request to engine.Serve and writes its answer.
func (b *Bridge) serve(w http.ResponseWriter, r *http.Request, remoteAddr string) {
	resp, _ := b.eng.Serve(r.Context(), &engine.WebRequest{
		Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header,
		Body: r.Body, ContentLength: r.ContentLength, RemoteAddr: remoteAddr,
		RequestID: r.Header.Get(echo.HeaderXRequestID),
	})
	h := w.Header()
	for k, vs := range resp.Header {
		h[k] = vs
	}
	w.WriteHeader(resp.Status)
	if len(resp.Body) > 0 {
		_, _ = w.Write(resp.Body)
	}
}

// answerError writes the answer engine.HTTPAnswer gives for err.
func answerError(c echo.Context, err error) error {
	status, body := engine.HTTPAnswer(err)
	setAnswerHeader(c, err)
	return c.JSON(status, body)
}

// setAnswerHeader sets the headers engine.HTTPAnswerHeader gives for err
// (Retry-After for an overloaded module).
func setAnswerHeader(c echo.Context, err error) {
	h := c.Response().Header()
	for k, vs := range engine.HTTPAnswerHeader(err) {
		h[k] = vs
	}
}

// matrixError answers status with {"errcode": code, "error": msg}.
func matrixError(c echo.Context, status int, code, msg string) error {
	return answerError(c, engine.NewHTTPError(status, code, msg))
}

// requestID is the engine's request id for c (the client's X-Request-Id
// when usable), set on the answer too.
func (b *Bridge) requestID(c echo.Context) string {
	id := b.eng.RequestID(c.Request().Header.Get(echo.HeaderXRequestID))
	c.Response().Header().Set(echo.HeaderXRequestID, id)
	return id
}

// NewServer returns an echo server with the bridge mounted and the
// settings luamods serve uses.
func NewServer(b *Bridge) *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.Server.ReadHeaderTimeout = 10 * time.Second
	e.Server.ReadTimeout = 60 * time.Second // a client trickling a body cannot hold a connection forever
	e.Server.IdleTimeout = 120 * time.Second
	b.Mount(e)
	return e
}

// Shutdown stops e gracefully: no new connections, in-flight requests finish
// until ctx ends.
func Shutdown(ctx context.Context, e *echo.Echo) error {
	if err := e.Shutdown(ctx); err != nil {
		return fmt.Errorf("httpbridge: shutdown: %w", err)
	}
	return nil
}
