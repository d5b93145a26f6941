package luaapi

import (
	"context"
	"fmt"
	"regexp"
	"runtime"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// AsyncFunc is the part of an asynchronous api function that runs off the
// state's owner. It must return promptly once ctx is done. deliver, which
// may be nil, runs back as the owner and builds the Lua results.
type AsyncFunc func(ctx context.Context) (deliver func(L *lua.LState) []lua.LValue, err error)

// awaitRequest asks the owner loop to run an AsyncFunc and resume the
// calling thread with its outcome.
type awaitRequest struct {
	run AsyncFunc
}

// pcallRequest asks the owner loop to run fn as a child thread and resume
// the calling thread with pcall's results (xpcall's when handler is set).
type pcallRequest struct {
	fn      *lua.LFunction
	args    []lua.LValue
	handler *lua.LFunction
}

// requestOf returns the request a thread yielded, or nil.
func requestOf(vals []lua.LValue) any {
	if len(vals) != 1 {
		return nil
	}
	if ud, ok := vals[0].(*lua.LUserData); ok {
		switch ud.Value.(type) {
		case *awaitRequest, *pcallRequest:
			return ud.Value
		}
	}
	return nil
}

func yieldRequest(L *lua.LState, req any) int {
	ud := L.NewUserData()
	ud.Value = req
	return L.Yield(ud)
}

// yieldable reports whether the running Go function may yield: only when the
// thread's own interpreter loop called it. Inside a sort comparator, a gsub
// callback, an iterator or a metamethod, gopher-lua runs a nested loop, and a
// yield there would panic out of Resume (gopherlua.md §1.7).
func yieldable() bool {
	var pcs [48]uintptr
	n := runtime.Callers(3, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	loops := 0
	for {
		f, more := frames.Next()
		if strings.HasPrefix(f.Function, "github.com/yuin/gopher-lua.mainLoop") {
			loops++
		}
		if !more {
			break
		}
	}
	return loops == 1
}

// notYieldable is the message of an async api function called where it
// cannot wait.
const notYieldable = "cannot wait here: inside a metamethod, an iterator, a sort comparator or a gsub callback"

// asyncFunction makes the raw Go side of an asynchronous api function. parse
// reads the Lua arguments, as the state's owner, and returns the work to do.
// The raw function returns (true, n, results...) or (false, error); the Lua
// wrapper made by wrapAsync turns that into results or an error raised at the
// caller's line.
func asyncFunction(name string, parse func(L *lua.LState) (AsyncFunc, error)) lua.LGFunction {
	return func(L *lua.LState) int {
		run, err := parse(L)
		if now, ok := err.(immediate); ok {
			L.Push(lua.LTrue)
			L.Push(lua.LNumber(len(now)))
			for _, v := range now {
				L.Push(v)
			}
			return 2 + len(now)
		}
		if err != nil {
			L.Push(lua.LFalse)
			L.Push(lua.LString(name + ": " + err.Error()))
			return 2
		}
		if !yieldable() {
			L.Push(lua.LFalse)
			L.Push(lua.LString(name + ": " + notYieldable))
			return 2
		}
		return yieldRequest(L, &awaitRequest{run: func(ctx context.Context) (func(*lua.LState) []lua.LValue, error) {
			deliver, err := run(ctx)
			if err != nil {
				err = fmt.Errorf("%s: %w", name, err)
			}
			return deliver, err
		}})
	}
}

// basePcall is pcall(f, ...) as a request to the owner loop, so that f may
// wait on Go. A Go function f, which cannot wait, and any call where
// yielding is impossible, run as a plain protected call instead.
func basePcall(L *lua.LState) int {
	fn := L.CheckFunction(1)
	args := stackArgs(L, 2)
	if fn.IsG || !yieldable() {
		return syncPcall(L, fn, nil, args)
	}
	return yieldRequest(L, &pcallRequest{fn: fn, args: args})
}

// baseXpcall is xpcall(f, handler, ...): like pcall, and on error the
// handler's first result is the error value returned.
func baseXpcall(L *lua.LState) int {
	fn := L.CheckFunction(1)
	handler := L.CheckFunction(2)
	args := stackArgs(L, 3)
	if fn.IsG || !yieldable() {
		return syncPcall(L, fn, handler, args)
	}
	return yieldRequest(L, &pcallRequest{fn: fn, args: args, handler: handler})
}

func stackArgs(L *lua.LState, from int) []lua.LValue {
	top := L.GetTop()
	if top < from {
		return nil
	}
	args := make([]lua.LValue, 0, top-from+1)
	for i := from; i <= top; i++ {
		args = append(args, L.Get(i))
	}
	return args
}

func syncPcall(L *lua.LState, fn, handler *lua.LFunction, args []lua.LValue) int {
	base := L.GetTop()
	L.Push(fn)
	for _, a := range args {
		L.Push(a)
	}
	if err := L.PCall(len(args), lua.MultRet, handler); err != nil {
		L.SetTop(base)
		L.Push(lua.LFalse)
		obj := errorObject(err)
		if msg, ok := obj.(lua.LString); ok && fn.IsG {
			// gopher-lua positions an error raised by a Go function called
			// straight from pcall at an empty location: " msg".
			obj = lua.LString(strings.TrimPrefix(string(msg), " "))
		}
		L.Push(obj)
		return 2
	}
	L.Insert(lua.LTrue, base+1)
	return L.GetTop() - base
}

// preludePosition is the position the prelude's wrappers give an error
// raised where they have no Lua caller (pcall(api.sleep, x)); it is removed,
// as PUC Lua gives no position there either.
var preludePosition = regexp.MustCompile(`^=luamods[^:]*:\d+: `)

// preludeSource wraps the raw Go functions so that no yield ever happens in
// a tail call (gopherlua.md §4, trap 2) and async errors are raised at the
// caller's line.
const preludeSource = `
local raw_pcall, raw_xpcall, error = ...
local function pass(...) return ... end
local function wrap(raw)
  return function(...)
    local ok, n, a, b, c, d = raw(...)
    if not ok then error(n, 2) end
    if n == 0 then return end
    if n == 1 then return a end
    if n == 2 then return a, b end
    if n == 3 then return a, b, c end
    return a, b, c, d
  end
end
return function(f, ...) return pass(raw_pcall(f, ...)) end,
  function(f, h, ...) return pass(raw_xpcall(f, h, ...)) end,
  wrap
`
