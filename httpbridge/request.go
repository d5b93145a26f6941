package httpbridge

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	lua "github.com/yuin/gopher-lua"

	"luamods/luaapi"
)

// request is what a handler's request table is built from.
type request struct {
	method, path, subpath string
	query                 map[string][]string
	headers               http.Header
	body                  []byte
	remoteAddr, requestID string
}

// requestMetaKey is the registry key of the request tables' metatable.
const requestMetaKey = "luamods.request"

// toLua builds the request table (design §5). method, path, subpath,
// query (name → first value), body, remote_addr and request_id are set at
// once; headers (lower-case names), query_all and json (when the body is
// JSON) are built the first time the handler reads them, during the call,
// so a handler that does not read them does not pay for them.
func (r *request) toLua(L *lua.LState, pending *pendingRequests) *lua.LTable {
	t := L.CreateTable(0, 10)
	t.RawSetString("method", lua.LString(r.method))
	t.RawSetString("path", lua.LString(r.path))
	t.RawSetString("subpath", lua.LString(r.subpath))
	t.RawSetString("body", lua.LString(r.body))
	t.RawSetString("remote_addr", lua.LString(r.remoteAddr))
	t.RawSetString("request_id", lua.LString(r.requestID))
	q := L.CreateTable(0, len(r.query))
	for k, vs := range r.query {
		if len(vs) > 0 {
			q.RawSetString(k, lua.LString(vs[0]))
		}
	}
	t.RawSetString("query", q)
	reg := L.Get(lua.RegistryIndex)
	meta, ok := L.GetField(reg, requestMetaKey).(*lua.LTable)
	if !ok {
		meta = L.CreateTable(0, 2)
		meta.RawSetString("__index", L.NewFunction(func(L *lua.LState) int {
			t := L.CheckTable(1)
			key := L.CheckString(2)
			req := pending.get(t)
			if req == nil {
				return 0
			}
			v := req.lazyField(L, key)
			if v != lua.LNil {
				t.RawSetString(key, v)
			}
			L.Push(v)
			return 1
		}))
		L.SetField(reg, requestMetaKey, meta)
	}
	t.Metatable = meta
	pending.put(t, r)
	return t
}

// pendingRequests finds the request behind a request table during its call.
type pendingRequests struct {
	mu sync.Mutex
	m  map[*lua.LTable]*request
}

func (p *pendingRequests) put(t *lua.LTable, r *request) {
	p.mu.Lock()
	if p.m == nil {
		p.m = make(map[*lua.LTable]*request)
	}
	p.m[t] = r
	p.mu.Unlock()
}

func (p *pendingRequests) get(t *lua.LTable) *request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m[t]
}

func (p *pendingRequests) remove(t *lua.LTable) {
	p.mu.Lock()
	delete(p.m, t)
	p.mu.Unlock()
}

// lazyField builds headers, query_all or json on first use.
func (r *request) lazyField(L *lua.LState, key string) lua.LValue {
	switch key {
	case "headers":
		h := L.CreateTable(0, len(r.headers))
		for k, vs := range r.headers {
			h.RawSetString(strings.ToLower(k), lua.LString(strings.Join(vs, ", ")))
		}
		return h
	case "query_all":
		qa := L.CreateTable(0, len(r.query))
		for k, vs := range r.query {
			all := L.CreateTable(len(vs), 0)
			for _, v := range vs {
				all.Append(lua.LString(v))
			}
			qa.RawSetString(k, all)
		}
		return qa
	case "json":
		if !looksJSON(r.headers.Get("Content-Type"), r.body) {
			return lua.LNil
		}
		v, err := luaapi.DecodeJSON(r.body)
		if err != nil {
			return lua.LNil
		}
		lv, err := luaapi.ToLua(L, v)
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
	if strings.HasPrefix(contentType, "application/json") || strings.HasSuffix(strings.Split(contentType, ";")[0], "+json") {
		return true
	}
	return contentType == "" && (body[0] == '{' || body[0] == '[')
}

// response is a handler's answer, read from its return value.
type response struct {
	status  int
	headers http.Header
	body    []byte
}

// errBadResponse is the cause of a handler returning something that is not
// a response table.
var errBadResponse = errors.New("bad response")

// responseFromLua reads {status=, json=} or {status=, body=, headers=}.
// A bare string is a 200 text/plain body.
func responseFromLua(v lua.LValue) (*response, error) {
	if s, ok := v.(lua.LString); ok {
		return &response{status: 200, headers: http.Header{"Content-Type": {"text/plain; charset=utf-8"}}, body: []byte(s)}, nil
	}
	t, ok := v.(*lua.LTable)
	if !ok {
		return nil, fmt.Errorf("%w: the handler returned a %s, not a table like {status = 200, json = {...}}", errBadResponse, v.Type())
	}
	resp := &response{status: 200, headers: http.Header{}}
	switch st := t.RawGetString("status").(type) {
	case *lua.LNilType:
	case lua.LNumber:
		resp.status = int(st)
		if resp.status < 100 || resp.status > 599 || float64(st) != float64(resp.status) {
			return nil, fmt.Errorf("%w: status %v is not an HTTP status", errBadResponse, st)
		}
	default:
		return nil, fmt.Errorf("%w: status must be a number, not a %s", errBadResponse, st.Type())
	}
	if hs, ok := t.RawGetString("headers").(*lua.LTable); ok {
		var bad error
		hs.ForEach(func(k, v lua.LValue) {
			name, value := k.String(), v.String()
			if strings.ContainsAny(name, "\r\n: ") || strings.ContainsAny(value, "\r\n") || name == "" {
				bad = fmt.Errorf("%w: header %q would break the HTTP response", errBadResponse, name)
				return
			}
			resp.headers.Add(name, value)
		})
		if bad != nil {
			return nil, bad
		}
	}
	if j := t.RawGetString("json"); j != lua.LNil {
		b, err := luaapi.EncodeLuaJSON(j)
		if err != nil {
			return nil, fmt.Errorf("%w: json: %v", errBadResponse, err)
		}
		resp.body = b
		if resp.headers.Get("Content-Type") == "" {
			resp.headers.Set("Content-Type", "application/json")
		}
		return resp, nil
	}
	switch b := t.RawGetString("body").(type) {
	case *lua.LNilType:
	case lua.LString:
		resp.body = []byte(b)
	default:
		return nil, fmt.Errorf("%w: body must be a string, not a %s (use json = ... for data)", errBadResponse, b.Type())
	}
	if resp.headers.Get("Content-Type") == "" && len(resp.body) > 0 {
		resp.headers.Set("Content-Type", "text/plain; charset=utf-8")
	}
	return resp, nil
}

// allowHeader lists a route's methods for 405 answers.
func allowHeader(methods []string) string {
	m := append([]string(nil), methods...)
	sort.Strings(m)
	return strings.Join(m, ", ")
}

func decodeJSON(data []byte) (any, error) { return luaapi.DecodeJSON(data) }
