package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"luamods/luaapi"
)

// WebRequest is an HTTP request for the modules' web resources, in plain
// Go values: what an HTTP adapter (httpbridge) hands to Serve.
type WebRequest struct {
	Method        string
	Path          string // the URL path
	Query         url.Values
	Header        http.Header
	Body          io.Reader // read up to max_request_body; nil: no body
	ContentLength int64     // -1 when unknown
	RemoteAddr    string    // the client's address, for request.remote_addr
	// RequestID is the id the client proposed (X-Request-Id); Serve keeps
	// it when it is short and safe, else makes one.
	RequestID string
}

// Response is a web resource's answer, in plain Go values.
type Response = luaapi.Response

// ErrNoRoute is why Serve answers 404: no module serves the path. An
// embedder that serves other paths itself may test for it with errors.Is.
var ErrNoRoute = errors.New("engine: no web resource serves this path")

// Serve answers req with the module web resource whose path is req's path
// or the longest registered path above it (design §5). The returned
// Response is always the answer to write: when err is not nil it is the
// error answer (404 when no route matches, 405 with Allow, 413, a module's
// error table, or 500), and err says why. Every answer carries
// X-Request-Id; route requests count in the route metrics.
func (e *Engine) Serve(ctx context.Context, req *WebRequest) (*Response, error) {
	gen := e.acquire()
	defer gen.release()
	id := e.RequestID(req.RequestID)
	route, subpath, ok := gen.Match(req.Path)
	if !ok {
		err := &HTTPError{Status: http.StatusNotFound, Body: map[string]any{"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"}, Err: ErrNoRoute}
		return errorResponse(err, id), err
	}
	start := time.Now()
	resp, err := gen.serveRoute(ctx, route, subpath, req, id)
	if err != nil {
		resp = errorResponse(err, id)
	} else {
		resp.Header.Set("X-Request-Id", id)
		if req.Method == http.MethodHead {
			resp.Body = nil
		}
	}
	route.requests.counter(e.metrics.RouteRequests, route.Path, req.Method, resp.Status).Inc()
	route.latency.Observe(time.Since(start).Seconds())
	return resp, err
}

// serveRoute runs the route's handler for the method, within the body limit.
func (g *Generation) serveRoute(ctx context.Context, route *Route, subpath string, req *WebRequest, id string) (*Response, error) {
	entry, ok := route.entries[req.Method]
	if !ok {
		entry, ok = route.entries["*"]
	}
	if !ok && req.Method == http.MethodHead {
		entry, ok = route.entries[http.MethodGet]
	}
	if !ok {
		err := NewHTTPError(http.StatusMethodNotAllowed, "M_UNRECOGNIZED", "Method not allowed")
		err.Header = http.Header{"Allow": {allowHeader(route.Methods)}}
		return nil, err
	}
	limit := g.Config.MaxRequestBody
	if req.ContentLength > limit {
		return nil, bodyTooLarge()
	}
	var body []byte
	if req.Body != nil && req.Body != http.NoBody { // a GET's: io.ReadAll would allocate 512 bytes for nothing
		var err error
		if body, err = io.ReadAll(io.LimitReader(req.Body, limit+1)); err != nil {
			return nil, &HTTPError{Status: http.StatusBadRequest, Body: map[string]any{"errcode": "M_UNKNOWN", "error": "Could not read the request body"}, Err: err}
		}
		if int64(len(body)) > limit {
			return nil, bodyTooLarge()
		}
	}
	if luaapi.IsJSONContentType(req.Header.Get("Content-Type")) {
		if err := g.Config.CheckRequestJSON(body); err != nil {
			return nil, err
		}
	}
	r := &luaapi.Request{
		Method: req.Method, Path: cleanPath(req.Path), Subpath: subpath, Query: req.Query,
		Header: req.Header, Body: body, RemoteAddr: req.RemoteAddr, RequestID: id,
	}
	var resp *Response
	err := route.Module.withState(func(s *luaapi.State) (err error) {
		resp, err = s.Serve(ctx, entry, r)
		return err
	})
	if err != nil {
		g.logRouteError(route, req.Path, id, err)
		return nil, err
	}
	return resp, nil
}

// bodyTooLarge is the answer to a request body over max_request_body.
func bodyTooLarge() *HTTPError {
	return NewHTTPError(http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "Request body too large")
}

// CheckRequestJSON refuses a JSON request body that would cost too much to
// decode, before any module sees it: more values and keys than
// max_request_json_nodes is 413 M_TOO_LARGE, nesting deeper than
// luaapi.MaxDepth 400 M_NOT_JSON. Anything else (invalid JSON included) is
// left to the decoder.
func (c *Config) CheckRequestJSON(body []byte) *HTTPError {
	max := c.MaxRequestJSONNodes
	if max == 0 {
		max = luaapi.DefaultMaxJSONNodes
	}
	_, err := luaapi.CheckJSON(body, max)
	switch {
	case errors.Is(err, luaapi.ErrJSONTooLarge):
		return &HTTPError{Status: http.StatusRequestEntityTooLarge, Err: err, Body: map[string]any{"errcode": "M_TOO_LARGE",
			"error": fmt.Sprintf("Request JSON has more than %d values and keys (max_request_json_nodes)", max)}}
	case errors.Is(err, luaapi.ErrJSONTooDeep):
		return &HTTPError{Status: http.StatusBadRequest, Err: err, Body: map[string]any{"errcode": "M_NOT_JSON",
			"error": fmt.Sprintf("Request JSON nests arrays and objects more than %d levels deep", luaapi.MaxDepth)}}
	}
	return nil
}

// logRouteError logs a handler's failure that becomes a 500, with file:line
// and the request id; an error table (a deliberate answer) is not logged.
func (g *Generation) logRouteError(route *Route, path, id string, err error) {
	if status, _ := HTTPAnswer(err); status != http.StatusInternalServerError {
		return
	}
	attrs := []any{"module", route.Module.Name, "path", path, "request_id", id, "error", err.Error()}
	if se := (*luaapi.ScriptError)(nil); errors.As(err, &se) {
		attrs = append(attrs, "where", se.Where())
		if se.Traceback != "" {
			attrs = append(attrs, "traceback", se.Traceback)
		}
	}
	if errors.Is(err, luaapi.ErrBadResponse) {
		attrs = append(attrs, "handler", route.Where)
	}
	g.engine.log.Error("web resource failed", attrs...)
}

// errorResponse is the answer HTTPAnswer gives for err, as JSON, with the
// headers of an *HTTPError and the request id.
func errorResponse(err error, id string) *Response {
	status, body := HTTPAnswer(err)
	var buf bytes.Buffer
	_ = json.NewEncoder(&buf).Encode(body)
	h := http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {id}}
	for k, vs := range HTTPAnswerHeader(err) {
		h[k] = vs
	}
	return &Response{Status: status, Header: h, Body: buf.Bytes()}
}

// RequestID is the client's id when it is short and has no line breaks,
// else a new one: unique across restarts (a random prefix per engine) and
// free of system calls (a counter).
func (e *Engine) RequestID(proposed string) string {
	if proposed != "" && len(proposed) <= 64 && !strings.ContainsAny(proposed, "\r\n") {
		return proposed
	}
	var buf [48]byte // one allocation: the string
	b := append(append(buf[:0], e.idPrefix...), '-')
	return string(strconv.AppendUint(b, e.idCounter.Add(1), 10))
}

// ObserveRoute records a request served outside the module routes (the
// host protocol endpoints) in the route metrics, as Serve records routes.
func (e *Engine) ObserveRoute(route, method string, status int, took time.Duration) {
	e.metrics.RouteRequests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	e.metrics.RouteLatency.WithLabelValues(route).Observe(took.Seconds())
}

// routeLatency is the latency series of a route path, looked up once.
func (e *Engine) routeLatency(path string) prometheus.Observer {
	return e.metrics.RouteLatency.WithLabelValues(path)
}

// allowHeader lists a route's methods for 405 answers.
func allowHeader(methods []string) string {
	m := append([]string(nil), methods...)
	sort.Strings(m)
	return strings.Join(m, ", ")
}
