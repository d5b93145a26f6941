package luaapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	lua "github.com/yuin/gopher-lua"
)

// Request is an HTTP request to a module's web resource, in Go values:
// what the handler's request table is built from (design §5).
type Request struct {
	Method, Path, Subpath string
	Query                 map[string][]string
	Header                http.Header
	Body                  []byte
	RemoteAddr, RequestID string
}

// Response is a web resource's answer, in Go values.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// ErrBadResponse is the cause of a handler returning something that is not
// a response.
var ErrBadResponse = errors.New("bad response")

// Serve calls the web resource handler key with the request table of r and
// reads its answer: {status=, json=}, {status=, body=, headers=}, or a
// string (a 200 text/plain body).
func (s *State) Serve(ctx context.Context, key Entry, r *Request) (*Response, error) {
	wc := &webCall{req: *r} // a copy: the caller's need not be allocated
	c := &wc.call
	c.entry, c.web = key, &wc.req
	if _, err := s.call(ctx, c); err != nil {
		return nil, err
	}
	return c.out.resp, nil // the call answered: c.out is its owner's no longer
}

// webCall is a call to a web resource handler and its request, in one
// allocation; other calls do not carry the request's room.
type webCall struct {
	call
	req Request
}

// webArgs builds the request table of the call's web request, as the
// state's owner; webDone forgets it once the call is over.
func (c *call) webArgs(L *lua.LState) []lua.LValue {
	c.webTable = c.web.toLua(L, c.s)
	c.argBuf[0] = c.webTable
	return c.argBuf[:]
}

func (c *call) webDone() {
	if c.webTable != nil {
		c.s.web.remove(c.webTable)
		c.webTable = nil
	}
}

// webResult reads the handler's answer.
func webResult(vals []lua.LValue) (*Response, error) {
	if len(vals) == 0 {
		return responseFromLua(lua.LNil)
	}
	return responseFromLua(vals[0])
}

// requestShape is the request table's fields set at once (toLua).
var requestShape = newShape("method", "path", "subpath", "body", "remote_addr", "request_id", "query")

// requestMetaKey is the registry key of the request tables' metatable.
const requestMetaKey = "luamods.request"

// toLua builds the request table (design §5). method, path, subpath,
// query (name → first value), body, remote_addr and request_id are set at
// once; headers (lower-case names), query_all and json (when the body is
// JSON) are built the first time the handler reads them, during the call,
// so a handler that does not read them does not pay for them.
func (r *Request) toLua(L *lua.LState, s *State) *lua.LTable {
	var nameBuf [8]string
	var valBuf [8]lua.LValue
	names, vals := nameBuf[:0], valBuf[:0]
	for k, vs := range r.Query {
		if len(vs) > 0 {
			names, vals = append(names, k), append(vals, s.vals.str(vs[0]))
		}
	}
	t := requestShape.table([]lua.LValue{
		s.vals.str(r.Method),
		s.vals.str(r.Path),
		s.vals.str(r.Subpath),
		lua.LString(r.Body), // not in a block, where a value kept long would keep a large body alive
		s.vals.str(r.RemoteAddr),
		s.vals.str(r.RequestID),
		stringTable(names, nil, vals),
	})
	reg := L.Get(lua.RegistryIndex)
	meta, ok := L.GetField(reg, requestMetaKey).(*lua.LTable)
	if !ok {
		meta = L.CreateTable(0, 2)
		meta.RawSetString("__index", L.NewFunction(func(L *lua.LState) int {
			t := L.CheckTable(1)
			key := L.CheckString(2)
			req := s.web.get(t)
			if req == nil {
				return 0
			}
			v := req.lazyField(s, L, key)
			if v != lua.LNil {
				t.RawSetString(key, v)
			}
			L.Push(v)
			return 1
		}))
		L.SetField(reg, requestMetaKey, meta)
	}
	t.Metatable = meta
	s.web.put(t, r)
	return t
}

// webRequests finds the request behind a request table during its call.
type webRequests struct {
	mu sync.Mutex
	m  map[*lua.LTable]*Request
}

func (p *webRequests) put(t *lua.LTable, r *Request) {
	p.mu.Lock()
	if p.m == nil {
		p.m = make(map[*lua.LTable]*Request)
	}
	p.m[t] = r
	p.mu.Unlock()
}

func (p *webRequests) get(t *lua.LTable) *Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m[t]
}

func (p *webRequests) remove(t *lua.LTable) {
	p.mu.Lock()
	delete(p.m, t)
	p.mu.Unlock()
}

// lazyField builds headers, query_all or json on first use. json is
// decoded within the module's JSON budget (max_request_json_nodes and
// MaxDepth, a Lua error past it) and charged to the call's memory.
func (r *Request) lazyField(s *State, L *lua.LState, key string) lua.LValue {
	switch key {
	case "headers":
		h := L.CreateTable(0, len(r.Header))
		for k, vs := range r.Header {
			h.RawSetString(strings.ToLower(k), lua.LString(strings.Join(vs, ", ")))
		}
		return h
	case "query_all":
		qa := L.CreateTable(0, len(r.Query))
		for k, vs := range r.Query {
			all := L.CreateTable(len(vs), 0)
			for _, v := range vs {
				all.Append(lua.LString(v))
			}
			qa.RawSetString(k, all)
		}
		return qa
	case "json":
		if !looksJSON(r.Header.Get("Content-Type"), r.Body) {
			return lua.LNil
		}
		sh, err := CheckJSON(r.Body, s.maxJSONNodes())
		if err != nil {
			L.RaiseError("request.json: %v", err)
		}
		s.charge(L, jsonCost(r.Body, sh))
		lv, err := DecodeJSONToLua(L, r.Body)
		if err != nil {
			return lua.LNil
		}
		return lv
	}
	return lua.LNil
}

func looksJSON(contentType string, body []byte) bool {
	if len(body) == 0 {
		return false
	}
	if IsJSONContentType(contentType) {
		return true
	}
	return contentType == "" && (body[0] == '{' || body[0] == '[')
}

// newResponse is a 200 response with an empty header, and the room for
// its Content-Type value, made in one allocation:
// resp.Header["Content-Type"] = append(room, v).
func newResponse() (resp *Response, room []string) {
	r := &struct {
		Response
		contentType [1]string
	}{Response: Response{Status: 200, Header: http.Header{}}}
	return &r.Response, r.contentType[:0:1]
}

// responseFromLua reads {status=, json=} or {status=, body=, headers=}.
// A bare string is a 200 text/plain body.
func responseFromLua(v lua.LValue) (*Response, error) {
	if s, ok := v.(lua.LString); ok {
		resp, room := newResponse()
		resp.Header["Content-Type"] = append(room, "text/plain; charset=utf-8")
		resp.Body = []byte(s)
		return resp, nil
	}
	t, ok := v.(*lua.LTable)
	if !ok {
		return nil, fmt.Errorf("%w: the handler returned a %s, not a table like {status = 200, json = {...}}", ErrBadResponse, v.Type())
	}
	resp, room := newResponse()
	switch st := t.RawGetString("status").(type) {
	case *lua.LNilType:
	case lua.LNumber:
		resp.Status = int(st)
		if resp.Status < 100 || resp.Status > 599 || float64(st) != float64(resp.Status) {
			return nil, fmt.Errorf("%w: status %v is not an HTTP status", ErrBadResponse, st)
		}
	default:
		return nil, fmt.Errorf("%w: status must be a number, not a %s", ErrBadResponse, st.Type())
	}
	if hs, ok := t.RawGetString("headers").(*lua.LTable); ok {
		var bad error
		eachField(hs, func(k, v lua.LValue) {
			name, value := k.String(), v.String()
			if strings.ContainsAny(name, "\r\n: ") || strings.ContainsAny(value, "\r\n") || name == "" {
				bad = fmt.Errorf("%w: header %q would break the HTTP response", ErrBadResponse, name)
				return
			}
			resp.Header.Add(name, value)
		})
		if bad != nil {
			return nil, bad
		}
	}
	if j := t.RawGetString("json"); j != lua.LNil {
		b, err := EncodeLuaJSON(j)
		if err != nil {
			return nil, fmt.Errorf("%w: json: %v", ErrBadResponse, err)
		}
		resp.Body = b
		if resp.Header.Get("Content-Type") == "" {
			resp.Header["Content-Type"] = append(room, "application/json")
		}
		return resp, nil
	}
	switch b := t.RawGetString("body").(type) {
	case *lua.LNilType:
	case lua.LString:
		resp.Body = []byte(b)
	default:
		return nil, fmt.Errorf("%w: body must be a string, not a %s (use json = ... for data)", ErrBadResponse, b.Type())
	}
	if resp.Header.Get("Content-Type") == "" && len(resp.Body) > 0 {
		resp.Header["Content-Type"] = append(room, "text/plain; charset=utf-8")
	}
	return resp, nil
}
