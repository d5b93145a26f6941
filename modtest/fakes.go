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

// fakeHost is the homeserver of a test: answers set by the test, calls
// recorded for it to inspect.
type fakeHost struct {
	mu      sync.Mutex
	answers map[string]any
	calls   []hostCall
}

type hostCall struct {
	Method string `json:"method"`
	Args   []any  `json:"args"`
}

func (h *fakeHost) CallHost(_ context.Context, method string, args []any) (any, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, hostCall{Method: method, Args: args})
	if v, ok := h.answers[method]; ok {
		return v, nil
	}
	return nil, fmt.Errorf("the fake homeserver has no answer for %s (set one with m.host:answer(%q, value))", method, method)
}

func (h *fakeHost) answer(method string, v any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.answers[method] = v
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

// fakeHTTP answers outbound requests with canned responses per method and
// URL, and records them.
type fakeHTTP struct {
	mu       sync.Mutex
	answers  map[string]cannedResponse // "METHOD url"
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

func (f *fakeHTTP) answer(method, url string, r cannedResponse) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[strings.ToUpper(method)+" "+url] = r
}

// RoundTrip answers from the canned responses: the full URL first, then the
// URL without its query.
func (f *fakeHTTP) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
	}
	headers := map[string]string{}
	for k := range req.Header {
		headers[strings.ToLower(k)] = req.Header.Get(k)
	}
	f.mu.Lock()
	f.requests = append(f.requests, recordedRequest{Method: req.Method, URL: req.URL.String(), Headers: headers, Body: string(body)})
	r, ok := f.answers[req.Method+" "+req.URL.String()]
	if !ok {
		u := *req.URL
		u.RawQuery = ""
		r, ok = f.answers[req.Method+" "+u.String()]
	}
	f.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("the fake HTTP has no answer for %s %s (set one with m.http:answer)", req.Method, req.URL)
	}
	resp := &http.Response{
		StatusCode: r.status, Status: fmt.Sprintf("%d %s", r.status, http.StatusText(r.status)),
		Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(r.body)), Request: req,
		ProtoMajor: 1, ProtoMinor: 1,
	}
	for k, v := range r.headers {
		resp.Header.Set(k, v)
	}
	return resp, nil
}

func (f *fakeHTTP) recorded() []recordedRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recordedRequest(nil), f.requests...)
}
