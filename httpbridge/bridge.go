package httpbridge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	lua "github.com/yuin/gopher-lua"

	"luamods/engine"
	"luamods/luaapi"
)

// Bridge serves an engine's modules over HTTP.
type Bridge struct {
	eng       *engine.Engine
	log       *slog.Logger
	idPrefix  string        // random per bridge: request ids are unique across restarts
	idCounter atomic.Uint64 // and cost no system call
	latency   sync.Map      // route path → prometheus.Observer
	requests  pendingRequests
}

// New returns a bridge for eng.
func New(eng *engine.Engine) *Bridge {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return &Bridge{eng: eng, log: eng.Logger(), idPrefix: hex.EncodeToString(b[:])}
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
	b.MountResources(e)
}

// MountResources registers only the modules' web resources, for servers
// that serve their own admin and metrics endpoints.
func (b *Bridge) MountResources(e *echo.Echo) {
	e.Any("/*", b.ServeResource)
	e.RouteNotFound("/*", b.ServeResource)
}

// ServeResource answers a request with the module web resource whose path
// is the request's path or the longest one above it.
func (b *Bridge) ServeResource(c echo.Context) error {
	gen, release := b.eng.Acquire()
	defer release()
	req := c.Request()
	route, subpath, ok := gen.Match(req.URL.Path)
	if !ok {
		return matrixError(c, http.StatusNotFound, "M_UNRECOGNIZED", "Unrecognized request")
	}
	start := time.Now()
	status := b.serveRoute(c, gen, route, subpath)
	b.eng.Metrics().RouteRequests.WithLabelValues(route.Path, req.Method, strconv.Itoa(status)).Inc()
	b.routeLatency(route.Path).Observe(time.Since(start).Seconds())
	return nil
}

func (b *Bridge) routeLatency(path string) prometheus.Observer {
	if o, ok := b.latency.Load(path); ok {
		return o.(prometheus.Observer)
	}
	o := b.eng.Metrics().RouteLatency.WithLabelValues(path)
	b.latency.Store(path, o)
	return o
}

func (b *Bridge) serveRoute(c echo.Context, gen *engine.Generation, route *engine.Route, subpath string) int {
	req := c.Request()
	entry, ok := route.Entries[req.Method]
	if !ok {
		entry, ok = route.Entries["*"]
	}
	if !ok && req.Method == http.MethodHead {
		entry, ok = route.Entries[http.MethodGet]
	}
	if !ok {
		c.Response().Header().Set("Allow", allowHeader(route.Methods))
		_ = matrixError(c, http.StatusMethodNotAllowed, "M_UNRECOGNIZED", "Method not allowed")
		return http.StatusMethodNotAllowed
	}
	limit := gen.Config.MaxRequestBody
	if req.ContentLength > limit {
		_ = matrixError(c, http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "Request body too large")
		return http.StatusRequestEntityTooLarge
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
	if err != nil {
		_ = matrixError(c, http.StatusBadRequest, "M_UNKNOWN", "Could not read the request body")
		return http.StatusBadRequest
	}
	if int64(len(body)) > limit {
		_ = matrixError(c, http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "Request body too large")
		return http.StatusRequestEntityTooLarge
	}
	r := &request{
		method: req.Method, path: req.URL.Path, subpath: subpath, query: req.URL.Query(),
		headers: req.Header, body: body, remoteAddr: c.RealIP(), requestID: b.requestID(c),
	}
	var resp *response
	var table *lua.LTable
	defer func() {
		if table != nil {
			b.requests.remove(table)
		}
	}()
	_, err = route.Module.State().Invoke(req.Context(), entry, func(L *lua.LState) ([]lua.LValue, error) {
		table = r.toLua(L, &b.requests)
		return []lua.LValue{table}, nil
	}, func(_ *lua.LState, vals []lua.LValue) ([]any, error) {
		var rerr error
		resp, rerr = responseFromLua(vals[0])
		return nil, rerr
	})
	if err != nil {
		return b.handlerError(c, route, r, err)
	}
	h := c.Response().Header()
	for k, vs := range resp.headers {
		h[k] = vs
	}
	c.Response().WriteHeader(resp.status)
	if req.Method != http.MethodHead {
		_, _ = c.Response().Write(resp.body)
	}
	return resp.status
}

// handlerError answers for a failed handler with engine.HTTPAnswer: an
// error table becomes its response (Synapse's SynapseError), anything else
// a 500, and the log gets file:line and the request id.
func (b *Bridge) handlerError(c echo.Context, route *engine.Route, r *request, err error) int {
	status, body := engine.HTTPAnswer(err)
	if status == http.StatusInternalServerError {
		attrs := []any{"module", route.Module.Name, "path", r.path, "request_id", r.requestID, "error", err.Error()}
		if se := (*luaapi.ScriptError)(nil); errors.As(err, &se) {
			attrs = append(attrs, "where", se.Where())
			if se.Traceback != "" {
				attrs = append(attrs, "traceback", se.Traceback)
			}
		}
		if errors.Is(err, errBadResponse) {
			attrs = append(attrs, "handler", route.Where)
		}
		b.log.Error("web resource failed", attrs...)
	}
	_ = c.JSON(status, body)
	return status
}

// answerError writes the answer engine.HTTPAnswer gives for err.
func answerError(c echo.Context, err error) error {
	status, body := engine.HTTPAnswer(err)
	return c.JSON(status, body)
}

// matrixError answers status with {"errcode": code, "error": msg}.
func matrixError(c echo.Context, status int, code, msg string) error {
	return answerError(c, engine.NewHTTPError(status, code, msg))
}

// requestID is the client's X-Request-Id (when short), else a new one; the
// answer carries it in X-Request-Id, and the log lines of the request too.
func (b *Bridge) requestID(c echo.Context) string {
	id := c.Request().Header.Get(echo.HeaderXRequestID)
	if id == "" || len(id) > 64 || strings.ContainsAny(id, "\r\n") {
		id = b.idPrefix + "-" + strconv.FormatUint(b.idCounter.Add(1), 10)
	}
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
