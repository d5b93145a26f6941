package modtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
)

// fakeHost is the homeserver of a test: answers scripted by the test per
// method, calls recorded for it to inspect.
type fakeHost struct {
	mu      sync.Mutex
	scripts map[string]*script[[]any, any]
	calls   []hostCall
}

type hostCall struct {
	Method string `json:"method"`
	Args   []any  `json:"args"`
}

func (h *fakeHost) CallHost(ctx context.Context, method string, args []any) (any, error) {
	h.mu.Lock()
	h.calls = append(h.calls, hostCall{Method: method, Args: args})
	var r responder[[]any, any]
	var err error
	ok := false
	if sc := h.scripts[method]; sc != nil {
		r, err, ok = sc.next()
	}
	h.mu.Unlock()
	switch {
	case !ok:
		return nil, fmt.Errorf("the fake homeserver has no answer for %s (set one with m.host:answer(%q, value))", method, method)
	case err != nil:
		return nil, err
	}
	return r(ctx, args)
}

// script returns the script of method, made on first use. Lock held.
func (h *fakeHost) script(method string) *script[[]any, any] {
	if h.scripts == nil {
		h.scripts = map[string]*script[[]any, any]{}
	}
	sc := h.scripts[method]
	if sc == nil {
		sc = &script[[]any, any]{}
		h.scripts[method] = sc
	}
	return sc
}

// answer sets what method answers: rs[0] every time (repeat), or rs in
// sequence.
func (h *fakeHost) answer(method string, rs []responder[[]any, any], repeat bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.script(method).answer(rs, repeat)
}

// fail makes method's next times calls fail with err (every call when
// times < 1).
func (h *fakeHost) fail(method string, err error, times int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.script(method).fail(err, times)
}

func (h *fakeHost) recorded(method string) []hostCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []hostCall
	for _, c := range h.calls {
		if method == "" || c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// fakeHTTP answers outbound requests as scripted per method and URL, and
// records them.
type fakeHTTP struct {
	mu       sync.Mutex
	scripts  map[string]*script[recordedRequest, cannedResponse] // "METHOD url"
	requests []recordedRequest
}

type cannedResponse struct {
	status  int
	headers map[string]string
	body    []byte
}

type recordedRequest struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

// script returns the script of method and url, made on first use. Lock held.
func (f *fakeHTTP) script(method, url string) *script[recordedRequest, cannedResponse] {
	key := strings.ToUpper(method) + " " + url
	if f.scripts == nil {
		f.scripts = map[string]*script[recordedRequest, cannedResponse]{}
	}
	sc := f.scripts[key]
	if sc == nil {
		sc = &script[recordedRequest, cannedResponse]{}
		f.scripts[key] = sc
	}
	return sc
}

func (f *fakeHTTP) answer(method, url string, rs []responder[recordedRequest, cannedResponse], repeat bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script(method, url).answer(rs, repeat)
}

// fail makes the next times requests to method and url fail without an
// answer, as a network failure does (every one when times < 1).
func (f *fakeHTTP) fail(method, url string, err error, times int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script(method, url).fail(err, times)
}

// RoundTrip answers as scripted: for the full URL first, then for the URL
// without its query.
func (f *fakeHTTP) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
	}
	headers := map[string]string{}
	for k := range req.Header {
		headers[strings.ToLower(k)] = req.Header.Get(k)
	}
	rec := recordedRequest{Method: req.Method, URL: req.URL.String(), Headers: headers, Body: string(body)}
	f.mu.Lock()
	f.requests = append(f.requests, rec)
	sc, found := f.scripts[req.Method+" "+req.URL.String()]
	if !found {
		u := *req.URL
		u.RawQuery = ""
		sc, found = f.scripts[req.Method+" "+u.String()]
	}
	var r responder[recordedRequest, cannedResponse]
	var err error
	ok := false
	if found {
		r, err, ok = sc.next()
	}
	f.mu.Unlock()
	switch {
	case !ok:
		return nil, fmt.Errorf("the fake HTTP has no answer for %s %s (set one with m.http:answer)", req.Method, req.URL)
	case err != nil:
		return nil, err
	}
	cr, err := r(req.Context(), rec)
	if err != nil {
		return nil, err
	}
	resp := &http.Response{
		StatusCode: cr.status, Status: fmt.Sprintf("%d %s", cr.status, http.StatusText(cr.status)),
		Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(cr.body)), Request: req,
		ProtoMajor: 1, ProtoMinor: 1,
	}
	for k, v := range cr.headers {
		resp.Header.Set(k, v)
	}
	return resp, nil
}

func (f *fakeHTTP) recorded() []recordedRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recordedRequest(nil), f.requests...)
}
