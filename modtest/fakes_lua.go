package modtest

import (
	"context"
	"fmt"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"luamods/luaapi"
)

// hostTable is m.host:
//
//	answer(method, value...)            every call answers value (several: a tuple)
//	answer(method, function(...) end)   every call answers what the function returns for the call's arguments
//	answer(method, {sequence = {a, b}}) the first call answers a, the next b, then calls fail
//	fail(method, err [, {times = n}])   the next n calls (every call without times) raise err, before any answer
//	calls([method])                     the calls received: {{method=, args={...}}, ...}
func (fr *fileRun) hostTable(L *lua.LState, h *handle) *lua.LTable {
	t := L.CreateTable(0, 3)
	t.RawSetString("answer", L.NewFunction(func(L *lua.LState) int {
		method := L.CheckString(2)
		rs, repeat, err := fr.hostResponders(L, 3)
		if err != nil {
			L.RaiseError("host:answer(%q): %v", method, err)
		}
		h.host.answer(method, rs, repeat)
		return 0
	}))
	t.RawSetString("fail", L.NewFunction(func(L *lua.LState) int {
		method := L.CheckString(2)
		times, err := failArgs(L, 3)
		h.host.fail(method, err, times)
		return 0
	}))
	t.RawSetString("calls", L.NewFunction(func(L *lua.LState) int {
		L.Push(toLuaOrNil(L, h.host.recorded(L.OptString(2, ""))))
		return 1
	}))
	return t
}

// httpTable is m.http:
//
//	answer(method, url, {status=, json=, body=, headers=})  every request gets this answer
//	answer(method, url, function(request) end)             the function returns the answer for each request
//	answer(method, url, {sequence = {answer, ...}})         one answer per request, in order, then requests fail
//	fail(method, url, err [, {times = n}])                  the next n requests (all without times) get no answer: a network failure
//	requests()                                              the requests made: {{method=, url=, headers=, body=}, ...}
func (fr *fileRun) httpTable(L *lua.LState, h *handle) *lua.LTable {
	t := L.CreateTable(0, 3)
	t.RawSetString("answer", L.NewFunction(func(L *lua.LState) int {
		method, url := L.CheckString(2), L.CheckString(3)
		rs, repeat, err := fr.httpResponders(L, 4)
		if err != nil {
			L.RaiseError("http:answer(%q, %q): %v", method, url, err)
		}
		h.http.answer(method, url, rs, repeat)
		return 0
	}))
	t.RawSetString("fail", L.NewFunction(func(L *lua.LState) int {
		method, url := L.CheckString(2), L.CheckString(3)
		times, err := failArgs(L, 4)
		h.http.fail(method, url, err, times)
		return 0
	}))
	t.RawSetString("requests", L.NewFunction(func(L *lua.LState) int {
		L.Push(toLuaOrNil(L, h.http.recorded()))
		return 1
	}))
	return t
}

// failArgs reads err [, {times = n}] from position at: how many times to fail, and the error to raise.
func failArgs(L *lua.LState, at int) (times int, raise error) {
	v, err := luaapi.FromLua(L.Get(at))
	if err != nil || v == nil {
		L.ArgError(at, "the error to raise: a string or a table such as {errcode = ..., error = ...}")
	}
	if opts, ok := L.Get(at + 1).(*lua.LTable); ok {
		if n, ok := opts.RawGetString("times").(lua.LNumber); ok {
			times = int(n)
			if times < 1 {
				L.ArgError(at+1, "times must be at least 1")
			}
		}
	}
	return times, luaapi.NewValueError(v)
}

// sequence returns the list of a {sequence = {...}} table, or nil.
func sequence(v lua.LValue) *lua.LTable {
	t, ok := v.(*lua.LTable)
	if !ok {
		return nil
	}
	seq, ok := t.RawGetString("sequence").(*lua.LTable)
	if !ok {
		return nil
	}
	only := true
	t.ForEach(func(k, _ lua.LValue) {
		if k != lua.LString("sequence") {
			only = false
		}
	})
	if !only {
		return nil
	}
	return seq
}

// each reads every item of a {sequence = {...}} list with one.
func each[R any](seq *lua.LTable, one func(lua.LValue) (R, error)) ([]R, error) {
	rs := make([]R, 0, seq.Len())
	for i := 1; i <= seq.Len(); i++ {
		r, err := one(seq.RawGetInt(i))
		if err != nil {
			return nil, fmt.Errorf("sequence item %d: %w", i, err)
		}
		rs = append(rs, r)
	}
	return rs, nil
}

// callback makes fn, a function of the test file, callable from the fakes'
// goroutines: it runs in the test file's state, which is idle while the test
// waits on the module. Owner goroutine.
func (fr *fileRun) callback(fn *lua.LFunction) func(ctx context.Context, args ...any) ([]any, error) {
	fr.fakes++
	key := fmt.Sprintf("fake:%d", fr.fakes)
	fr.state.Register(key, fn)
	return func(ctx context.Context, args ...any) ([]any, error) {
		return fr.state.Call(ctx, key, args...)
	}
}

// hostResponders reads the answer of m.host:answer from position at.
func (fr *fileRun) hostResponders(L *lua.LState, at int) ([]responder[[]any, any], bool, error) {
	one := func(v lua.LValue) (responder[[]any, any], error) {
		if fn, ok := v.(*lua.LFunction); ok {
			call := fr.callback(fn)
			return func(ctx context.Context, args []any) (any, error) {
				res, err := call(ctx, args...)
				if err != nil {
					return nil, fmt.Errorf("the answer function of the test failed: %w", err)
				}
				return asResult(res), nil
			}, nil
		}
		g, err := luaapi.FromLua(v)
		return constant[[]any](g), err
	}
	if seq := sequence(L.Get(at)); seq != nil {
		rs, err := each(seq, one)
		return rs, false, err
	}
	if L.GetTop() <= at {
		r, err := one(L.Get(at))
		return []responder[[]any, any]{r}, true, err
	}
	vals, err := argsFrom(L, at)
	return []responder[[]any, any]{constant[[]any, any](luaapi.Tuple(vals))}, true, err
}

// asResult turns a function's results into one answer: nothing is nil,
// several are a tuple.
func asResult(res []any) any {
	switch len(res) {
	case 0:
		return nil
	case 1:
		return res[0]
	default:
		return luaapi.Tuple(res)
	}
}

// httpResponders reads the answer of m.http:answer from position at.
func (fr *fileRun) httpResponders(L *lua.LState, at int) ([]responder[recordedRequest, cannedResponse], bool, error) {
	one := func(v lua.LValue) (responder[recordedRequest, cannedResponse], error) {
		if fn, ok := v.(*lua.LFunction); ok {
			call := fr.callback(fn)
			return func(ctx context.Context, req recordedRequest) (cannedResponse, error) {
				r := map[string]any{"method": req.Method, "url": req.URL, "headers": req.Headers, "body": req.Body}
				if strings.HasPrefix(req.Headers["content-type"], "application/json") {
					if j, err := luaapi.DecodeJSON([]byte(req.Body)); err == nil {
						r["json"] = j
					}
				}
				res, err := call(ctx, r)
				if err != nil {
					return cannedResponse{}, fmt.Errorf("the answer function of the test failed: %w", err)
				}
				return cannedFrom(asResult(res))
			}, nil
		}
		if v == lua.LNil {
			return constant[recordedRequest](cannedResponse{status: 200, headers: map[string]string{}}), nil
		}
		g, err := luaapi.FromLua(v)
		if err != nil {
			return nil, err
		}
		cr, err := cannedFrom(g)
		return constant[recordedRequest](cr), err
	}
	if seq := sequence(L.Get(at)); seq != nil {
		rs, err := each(seq, one)
		return rs, false, err
	}
	r, err := one(L.Get(at))
	return []responder[recordedRequest, cannedResponse]{r}, true, err
}

// cannedFrom reads an answer {status=, json=, body=, headers=} (all
// optional: a bare 200).
func cannedFrom(v any) (cannedResponse, error) {
	r := cannedResponse{status: 200, headers: map[string]string{}}
	if v == nil {
		return r, nil
	}
	spec, ok := v.(map[string]any)
	if !ok {
		return r, fmt.Errorf("an answer is a table {status=, json=, body=, headers=}, not %v", v)
	}
	for k, x := range spec {
		switch k {
		case "status":
			n, ok := x.(int64)
			if !ok || n < 100 || n > 599 {
				return r, fmt.Errorf("status must be an HTTP status code, not %v", x)
			}
			r.status = int(n)
		case "body":
			s, ok := x.(string)
			if !ok {
				return r, fmt.Errorf("body must be a string")
			}
			r.body = []byte(s)
		case "json":
			b, err := luaapi.EncodeJSON(x)
			if err != nil {
				return r, fmt.Errorf("json: %w", err)
			}
			r.body = b
			r.headers["Content-Type"] = "application/json"
		case "headers":
			hs, ok := x.(map[string]any)
			if !ok {
				return r, fmt.Errorf("headers must be a table of name = value")
			}
			for name, val := range hs {
				r.headers[name] = fmt.Sprint(val)
			}
		default:
			return r, fmt.Errorf("unknown field %q (status, json, body, headers)", k)
		}
	}
	return r, nil
}
