package luaapi

import (
	"fmt"

	lua "github.com/yuin/gopher-lua"
)

// guardGoFunctions wraps every Go function a module can reach from its
// globals and the api table (builtins, api functions) so that a Go panic
// inside one retires the state. gopher-lua turns such a panic into an
// ordinary Lua error inside a thread, and the state, whose Go-side
// structures may be half-updated, would otherwise stay in service.
func (s *State) guardGoFunctions() {
	seen := map[*lua.LTable]bool{}
	var walk func(t *lua.LTable, depth int)
	walk = func(t *lua.LTable, depth int) {
		if seen[t] || depth > 3 {
			return
		}
		seen[t] = true
		t.ForEach(func(_, v lua.LValue) {
			switch x := v.(type) {
			case *lua.LFunction:
				if x.IsG && x.GFunction != nil {
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
				if _, ok := r.(*lua.ApiError); !ok {
					s.log.Error("recovered a Go panic in a builtin", "panic", fmt.Sprint(r))
					s.Retire("recovered a Go panic: the state may be inconsistent")
				}
				panic(r)
			}
		}()
		return f(L)
	}
}
