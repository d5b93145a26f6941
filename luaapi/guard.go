package luaapi

import (
	"fmt"
	"sync"

	lua "github.com/yuin/gopher-lua"
)

// guardGoFunctions wraps every Go function a module can reach from its
// globals and the api table (builtins, api functions) so that a Go panic
// inside one retires the state. gopher-lua turns such a panic into an
// ordinary Lua error inside a thread, and the state, whose Go-side
// structures may be half-updated, would otherwise stay in service.
func (s *State) guardGoFunctions() {
	seen := map[*lua.LTable]bool{}
	shared := stdlib().funcs // guarded once, by guardShared
	var walk func(t *lua.LTable, depth int)
	walk = func(t *lua.LTable, depth int) {
		if seen[t] || depth > 3 {
			return
		}
		seen[t] = true
		t.ForEach(func(_, v lua.LValue) {
			switch x := v.(type) {
			case *lua.LFunction:
				if x.IsG && x.GFunction != nil && !shared[x] {
					x.GFunction = s.guard(x.GFunction)
				}
			case *lua.LTable:
				walk(x, depth+1)
			}
		})
	}
	walk(s.L.G.Global, 0)
	if api, ok := s.L.GetField(s.L.Get(lua.RegistryIndex), registryAPI).(*lua.LTable); ok {
		walk(api, 0)
	}
}

// guard is f retiring the state when it panics with anything but a Lua
// error; the panic still becomes the call's error.
func (s *State) guard(f lua.LGFunction) lua.LGFunction {
	return func(L *lua.LState) int {
		defer func() {
			if r := recover(); r != nil {
				s.retireAfterPanic(r)
				panic(r)
			}
		}()
		return f(L)
	}
}

// guardShared is guard for a function shared by all states (stdlib.go):
// the state to retire is the one of the calling thread.
func guardShared(f lua.LGFunction) lua.LGFunction {
	return func(L *lua.LState) int {
		defer func() {
			if r := recover(); r != nil {
				if s, ok := statesByGlobal.Load(L.G); ok {
					s.(*State).retireAfterPanic(r)
				}
				panic(r)
			}
		}()
		return f(L)
	}
}

// statesByGlobal maps the lua.Global of each open State (shared by its
// threads) to the State, for guardShared.
var statesByGlobal sync.Map

// retireAfterPanic retires s after a Go panic r in a builtin, unless r is
// an ordinary Lua error.
func (s *State) retireAfterPanic(r any) {
	if _, ok := r.(*lua.ApiError); ok {
		return
	}
	s.log.Error("recovered a Go panic in a builtin", "panic", fmt.Sprint(r))
	s.Retire("recovered a Go panic: the state may be inconsistent")
}
