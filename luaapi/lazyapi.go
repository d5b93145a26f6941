package luaapi

import (
	"slices"

	lua "github.com/yuin/gopher-lua"
)

// apiTables are the api fields that are tables of functions, built the
// first time a module reads them: most modules use few of them, and every
// state of every module would otherwise carry them all.
var apiTables = map[string]func(s *State) *lua.LTable{
	"errors":      (*State).errcodeTable,
	"log":         (*State).logTable,
	"json":        (*State).jsonTable,
	"regex":       (*State).regexTable,
	"http_client": (*State).httpTable,
	"metrics":     (*State).metricsTable,
	"crypto":      (*State).cryptoTable,
	"encoding":    (*State).encodingTable,
	"store":       (*State).storeTable,
	"RegistrationBehaviour": func(s *State) *lua.LTable {
		t := s.L.CreateTable(0, 3)
		t.RawSetString("ALLOW", lua.LString("allow"))
		t.RawSetString("SHADOW_BAN", lua.LString("shadow_ban"))
		t.RawSetString("DENY", lua.LString("deny"))
		return t
	},
}

// makeLazy gives the api table a protected metatable whose __index builds
// an apiTables field or a homeserver method (host.go) on its first read and
// stores it in the table, so later reads are plain lookups and see the same
// value. pairs(api) lists the fields stored so far: the eager ones and those
// read before.
func (s *State) makeLazy(api *lua.LTable) {
	meta := s.L.CreateTable(0, 2)
	meta.RawSetString("__index", s.L.NewFunction(func(L *lua.LState) int {
		name, ok := L.Get(2).(lua.LString)
		if !ok {
			return 0
		}
		v := s.buildAPIField(string(name))
		if v != lua.LNil {
			api.RawSetString(string(name), v)
		}
		L.Push(v)
		return 1
	}))
	meta.RawSetString("__metatable", lua.LFalse)
	api.Metatable = meta
}

// buildAPIField builds the lazy api field name, or returns nil.
func (s *State) buildAPIField(name string) lua.LValue {
	if build, ok := apiTables[name]; ok {
		return build(s)
	}
	if name == "run_db_interaction" {
		return s.apiRunDBInteraction()
	}
	if slices.Contains(HostMethods, name) {
		return s.hostMethod(name)
	}
	for _, mgr := range HostManagers {
		if mgr.Name == name {
			return s.hostManager(mgr.Name, mgr.Methods)
		}
	}
	return lua.LNil
}

// APINames are the names of every api field, built or not (for completion).
// Only the state's owner may call it (inside Do).
func (s *State) APINames() []string {
	var names []string
	s.API().ForEach(func(k, _ lua.LValue) {
		if name, ok := k.(lua.LString); ok {
			names = append(names, string(name))
		}
	})
	for name := range apiTables {
		names = append(names, name)
	}
	names = append(names, HostMethods...)
	names = append(names, "run_db_interaction")
	for _, mgr := range HostManagers {
		names = append(names, mgr.Name)
	}
	slices.Sort(names)
	return slices.Compact(names)
}
