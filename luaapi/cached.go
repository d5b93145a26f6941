package luaapi

import (
	"context"
	"fmt"
	"strconv"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// CacheOptions are the options of api.cached.
type CacheOptions struct {
	MaxEntries int           // LRU capacity; default 1000
	TTL        time.Duration // 0: no expiry
	NumArgs    int           // arguments that form the key; 0: all
}

// CacheProvider gives a module its memo caches. name identifies the cached
// function within the module (its definition site), so that every state of
// the module, and the next generation when the module is unchanged, get the
// same cache.
type CacheProvider interface {
	Cache(name string, opts CacheOptions) (MemoCache, error)
}

// MemoCache is one cached function's store. Keys are canonical encodings of
// the arguments; values are JSON-like Go values, copied in and out.
// Implementations are safe for concurrent use by every state of a module.
type MemoCache interface {
	Get(key string) (any, bool)
	// Load claims the computation of key. The leader computes and calls
	// complete exactly once; everyone else gets wait, which returns the
	// leader's outcome. Failures are not stored, and a value completed after
	// an invalidation of its key is returned but not stored.
	Load(key string) (leader bool, wait func(ctx context.Context) (any, error), complete func(value any, err error))
	Prefill(key string, value any)
	Invalidate(key string)
	InvalidateAll()
	// InvalidateEverywhere invalidates key here and in every process that
	// shares the cache (Synapse's invalidate_cache over replication).
	InvalidateEverywhere(ctx context.Context, key string) error
}

// cachedFunc is the Go side of one api.cached callable.
type cachedFunc struct {
	name    string
	cache   MemoCache
	numArgs int
}

// Registry keys of what every cached function of a state shares.
const (
	cachedMakerKey   = "luamods.cached.maker"   // function(fn, c) → the memoizing function
	cachedMethodsKey = "luamods.cached.methods" // invalidate, invalidate_all, prefill
)

// cachedSource builds the callable of api.cached. The Go primitives:
// get(c, ...) → true, value | false, key; load(c, key) → true, token (lead)
// or false, value (another caller computed it); complete(c, key, token, ok,
// result). fn's first result is cached.
const cachedSource = `
local get, load, complete, pcall, error = ...
return function(fn, c)
  return function(self, ...)
    local hit, v = get(c, ...)
    if hit then return v end
    local lead, token = load(c, v)
    if not lead then return token end
    local ok, res = pcall(fn, ...)
    complete(c, token, ok, res)
    if not ok then error(res, 0) end
    return res
  end
end
`

var cachedProto = mustCompile(cachedSource, "=luamods.cached")

// apiCached is api.cached(fn [, {max_entries=, ttl=, num_args=}]).
func (s *State) apiCached(L *lua.LState) int {
	fn := L.CheckFunction(1)
	opts := CacheOptions{MaxEntries: 1000}
	if t, ok := L.Get(2).(*lua.LTable); ok {
		if n, ok := t.RawGetString("max_entries").(lua.LNumber); ok {
			opts.MaxEntries = int(n)
		}
		if n, ok := t.RawGetString("ttl").(lua.LNumber); ok {
			opts.TTL = time.Duration(float64(n) * float64(time.Second))
		}
		if n, ok := t.RawGetString("num_args").(lua.LNumber); ok {
			opts.NumArgs = int(n)
		}
	}
	if opts.MaxEntries <= 0 || opts.NumArgs < 0 || opts.TTL < 0 {
		L.RaiseError("cached: max_entries must be positive, num_args and ttl not negative")
	}
	if s.opts.Env.Caches == nil {
		L.RaiseError("cached: caching is not available here")
	}
	name := definedAt(fn)
	cache, err := s.opts.Env.Caches.Cache(name, opts)
	if err != nil {
		L.RaiseError("cached: %s: %v", name, err)
	}
	cf := &cachedFunc{name: name, cache: cache, numArgs: opts.NumArgs}
	ud := L.NewUserData()
	ud.Value = cf

	L.Push(s.cachedMaker())
	L.Push(fn)
	L.Push(ud)
	L.Call(2, 1)
	call := L.Get(-1)
	L.Pop(1)

	obj := L.CreateTable(0, 2)
	obj.RawSetString("name", lua.LString(name))
	obj.RawSetString("__cache", ud)
	obj.Metatable = s.cachedMeta(call)
	L.Push(obj)
	return 1
}

// cachedMeta is the metatable of a callable: its own __call, and the
// methods all cached functions share.
func (s *State) cachedMeta(call lua.LValue) *lua.LTable {
	meta := s.L.CreateTable(0, 3)
	meta.RawSetString("__call", call)
	meta.RawSetString("__index", s.cachedMethods())
	meta.RawSetString("__metatable", lua.LString("cached"))
	return meta
}

// cachedMethods is the methods table of cached functions, made once per state.
func (s *State) cachedMethods() *lua.LTable {
	L := s.L
	reg := L.Get(lua.RegistryIndex)
	if t, ok := L.GetField(reg, cachedMethodsKey).(*lua.LTable); ok {
		return t
	}
	methods := L.CreateTable(0, 3)
	methods.RawSetString("invalidate", L.NewFunction(func(L *lua.LState) int {
		cf := checkCached(L, 1)
		cf.cache.Invalidate(cf.keyOfList(L, L.Get(2)))
		return 0
	}))
	methods.RawSetString("invalidate_all", L.NewFunction(func(L *lua.LState) int {
		checkCached(L, 1).cache.InvalidateAll()
		return 0
	}))
	methods.RawSetString("prefill", L.NewFunction(func(L *lua.LState) int {
		cf := checkCached(L, 1)
		v, err := FromLua(L.Get(3))
		if err != nil {
			L.RaiseError("prefill: cached function %s: %v", cf.name, err)
		}
		cf.cache.Prefill(cf.keyOfList(L, L.Get(2)), v)
		return 0
	}))
	L.SetField(reg, cachedMethodsKey, methods)
	return methods
}

// cachedMaker is cachedSource's function(fn, c), made once per state with
// its Go primitives.
func (s *State) cachedMaker() *lua.LFunction {
	L := s.L
	reg := L.Get(lua.RegistryIndex)
	if f, ok := L.GetField(reg, cachedMakerKey).(*lua.LFunction); ok {
		return f
	}
	get := L.NewFunction(func(L *lua.LState) int {
		cf := L.CheckUserData(1).Value.(*cachedFunc)
		key := cf.keyOfArgs(L, 2)
		if v, ok := cf.cache.Get(key); ok {
			lv, err := ToLua(L, v)
			if err != nil {
				L.RaiseError("cached function %s: %v", cf.name, err)
			}
			L.Push(lua.LTrue)
			L.Push(lv)
			return 2
		}
		L.Push(lua.LFalse)
		L.Push(lua.LString(key))
		return 2
	})
	L.Push(L.NewFunctionFromProto(cachedProto))
	L.Push(get)
	L.Push(s.asyncLua("cached", s.parseCacheLoad))
	L.Push(L.NewFunction(s.cacheComplete))
	L.Push(L.GetGlobal("pcall"))
	L.Push(L.GetGlobal("error"))
	L.Call(5, 1)
	maker := L.Get(-1).(*lua.LFunction)
	L.Pop(1)
	L.SetField(reg, cachedMakerKey, maker)
	return maker
}

// parseCacheLoad is load(c, key): lead without waiting, or wait for the
// leader's outcome.
func (s *State) parseCacheLoad(L *lua.LState) (AsyncFunc, error) {
	cf := L.CheckUserData(1).Value.(*cachedFunc)
	key := L.CheckString(2)
	leader, wait, complete := cf.cache.Load(key)
	if leader {
		s.nextID++
		token := s.nextID
		s.flights[token] = complete
		if s.current != nil {
			s.current.flights = append(s.current.flights, token)
		}
		return nil, immediate{lua.LTrue, lua.LNumber(token)}
	}
	return func(ctx context.Context) (func(*lua.LState) []lua.LValue, error) {
		v, err := wait(ctx)
		if err != nil {
			return nil, err
		}
		return func(L *lua.LState) []lua.LValue {
			lv, cerr := ToLua(L, v)
			if cerr != nil {
				lv = lua.LNil
			}
			return []lua.LValue{lua.LFalse, lv}
		}, nil
	}, nil
}

// immediate is returned by a parse function whose result is ready without
// waiting.
type immediate []lua.LValue

func (immediate) Error() string { return "immediate" }

// cacheComplete is complete(c, token, ok, result).
func (s *State) cacheComplete(L *lua.LState) int {
	cf := L.CheckUserData(1).Value.(*cachedFunc)
	token := L.CheckInt(2)
	complete, ok := s.flights[token]
	if !ok {
		return 0
	}
	delete(s.flights, token)
	if L.ToBool(3) {
		v, err := FromLua(L.Get(4))
		if err != nil {
			err = fmt.Errorf("cached function %s: result cannot be cached: %w", cf.name, err)
			complete(nil, err)
			L.RaiseError("%v", err)
		}
		complete(v, nil)
		return 0
	}
	complete(nil, luaValueError(L.Get(4)))
	return 0
}

// valueError carries a Lua error value to other waiters as a Go value.
type valueError struct {
	value any
	msg   string
}

func luaValueError(v lua.LValue) error {
	gv, err := FromLua(v)
	if err != nil {
		gv = v.String()
	}
	return &valueError{value: gv, msg: v.String()}
}

func (e *valueError) Error() string { return e.msg }

// LuaValue rebuilds the error value in the waiter's state.
func (e *valueError) LuaValue(L *lua.LState) lua.LValue {
	lv, err := ToLua(L, e.value)
	if err != nil {
		return lua.LString(e.msg)
	}
	return lv
}

func checkCached(L *lua.LState, n int) *cachedFunc {
	t := L.CheckTable(n)
	ud, ok := t.RawGetString("__cache").(*lua.LUserData)
	if !ok {
		L.ArgError(n, "cached function expected (call methods with ':')")
	}
	cf, ok := ud.Value.(*cachedFunc)
	if !ok {
		L.ArgError(n, "cached function expected")
	}
	return cf
}

// keyOfArgs encodes the stack arguments from index from on.
func (cf *cachedFunc) keyOfArgs(L *lua.LState, from int) string {
	n := L.GetTop() - from + 1
	if cf.numArgs > 0 {
		n = cf.numArgs
	}
	if n == 1 {
		if k, ok := scalarKey(L.Get(from)); ok {
			return k
		}
	}
	args := make([]any, n)
	for i := range args {
		v, err := FromLua(L.Get(from + i))
		if err != nil {
			L.RaiseError("cached function %s: argument %d cannot be a key: %v", cf.name, i+1, err)
		}
		args[i] = v
	}
	return cf.encode(L, args)
}

// keyOfList encodes a key list {a, b} as given to invalidate and prefill
// (Synapse's key tuple); a non-table is a one-element key.
func (cf *cachedFunc) keyOfList(L *lua.LState, keys lua.LValue) string {
	t, ok := keys.(*lua.LTable)
	if !ok {
		if k, ok := scalarKey(keys); ok {
			return k
		}
		L.RaiseError("cached function %s: keys must be a list like {a, b}", cf.name)
	}
	n := t.Len()
	if n == 1 {
		if k, ok := scalarKey(t.RawGetInt(1)); ok {
			return k
		}
	}
	args := make([]any, n)
	for i := range args {
		v, err := FromLua(t.RawGetInt(i + 1))
		if err != nil {
			L.RaiseError("cached function %s: key %d: %v", cf.name, i+1, err)
		}
		args[i] = v
	}
	return cf.encode(L, args)
}

// scalarKey is the fast path of a one-argument key.
func scalarKey(v lua.LValue) (string, bool) {
	switch x := v.(type) {
	case lua.LString:
		return "s" + string(x), true
	case lua.LNumber:
		return "n" + strconv.FormatFloat(float64(x), 'g', -1, 64), true
	case lua.LBool:
		return "b" + x.String(), true
	case *lua.LNilType:
		return "z", true
	}
	return "", false
}

// encode is the canonical key of several arguments: JSON, object keys sorted.
func (cf *cachedFunc) encode(L *lua.LState, args []any) string {
	b, err := EncodeJSON(args)
	if err != nil {
		L.RaiseError("cached function %s: %v", cf.name, err)
	}
	return "j" + string(b)
}

// apiRegisterCachedFunction is api.register_cached_function(f): accepted
// and idempotent. Every cache takes part in invalidate_cache already.
func (s *State) apiRegisterCachedFunction(L *lua.LState) int {
	checkCached(L, 1)
	return 0
}

// parseInvalidateCache is api.invalidate_cache(f, keys).
func (s *State) parseInvalidateCache(L *lua.LState) (AsyncFunc, error) {
	cf := checkCached(L, 1)
	key := cf.keyOfList(L, L.Get(2))
	return func(ctx context.Context) (func(*lua.LState) []lua.LValue, error) {
		return nil, cf.cache.InvalidateEverywhere(ctx, key)
	}, nil
}
