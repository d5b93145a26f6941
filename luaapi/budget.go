package luaapi

import lua "github.com/yuin/gopher-lua"

// DefaultMaxCallMemory is the allocation budget of one call when
// Env.MaxCallMemory is zero: what the builtins and api functions that build
// strings or tables from an argument may allocate for it in total.
const DefaultMaxCallMemory = 64 << 20

func (s *State) maxCallMemory() int64 {
	if n := s.opts.Env.MaxCallMemory; n > 0 {
		return n
	}
	return DefaultMaxCallMemory
}

// charge counts n bytes allocated by a builtin against the budget of the
// call being run, and raises a Lua error when the call has used it up.
func (s *State) charge(L *lua.LState, n int) {
	c := s.current
	if c == nil || n <= 0 {
		return
	}
	c.allocated += int64(n)
	if max := s.maxCallMemory(); c.allocated > max {
		L.RaiseError("call memory budget exceeded: builtins allocated %d bytes, over max_call_memory (%d bytes)", c.allocated, max)
	}
}
