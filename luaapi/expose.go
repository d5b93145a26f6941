package luaapi

import (
	"sort"

	luar "layeh.com/gopher-luar"
)

// ExposedGlobal is the global table under which a module sees the Go
// values of Env.Expose: host.<name>.
const ExposedGlobal = "host"

// installExposed sets host.<name> to each value of Env.Expose, converted
// by gopher-luar: a struct's exported fields and methods, a map, a slice,
// a function. Calls into them run synchronously on the state's owner
// goroutine: they cannot yield, and a slow one holds up every call of the
// state (async work belongs on Host). With nothing exposed there is no
// host global.
func (s *State) installExposed() {
	if len(s.opts.Env.Expose) == 0 {
		return
	}
	L := s.L
	names := make([]string, 0, len(s.opts.Env.Expose))
	for name := range s.opts.Env.Expose {
		names = append(names, name)
	}
	sort.Strings(names)
	t := L.CreateTable(0, len(names))
	for _, name := range names {
		t.RawSetString(name, luar.New(L, s.opts.Env.Expose[name]))
	}
	L.SetGlobal(ExposedGlobal, t)
}
