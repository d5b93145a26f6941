package luaapi

import (
	"fmt"
	"maps"
	"slices"
	"sync"

	lua "github.com/yuin/gopher-lua"
)

// The sandboxed standard library (base, string, table, math and the part of
// os a module keeps) is built once per process and copied into each state:
// every state gets tables of its own, since a module may change them, but
// the Go functions in them are shared. gopher-lua would otherwise make each
// of its ~90 functions, and grow each library table key by key, in every
// state: 24 KB of every idle module. A builtin gopher-lua's Go function
// takes the calling thread as its argument and keeps nothing of the state
// that created it, so sharing one is safe; the builtins luamods replaces
// with versions bound to a State (string.rep, format, find and the other
// bounded ones, print, error, require, pcall) are still made per state.

// sharedLib is the standard library as built once.
type sharedLib struct {
	globals *lua.LTable
	libs    []string                // the library tables among the globals
	funcs   map[*lua.LFunction]bool // the shared functions, already guarded
}

var stdlib = sync.OnceValue(buildSharedLib)

// sandboxLibs are the libraries a sandboxed module has.
var sandboxLibs = []lua.LGFunction{lua.OpenBase, lua.OpenTable, lua.OpenString, lua.OpenMath, lua.OpenOs}

func buildSharedLib() *sharedLib {
	L := lua.NewState(stateOptions) // never closed: it owns the shared functions
	for _, open := range sandboxLibs {
		open(L)
	}
	L.SetTop(0)
	for _, name := range sandboxRemoved {
		L.SetGlobal(name, lua.LNil)
	}
	full := L.GetGlobal("os").(*lua.LTable)
	os := L.CreateTable(0, len(sandboxOS))
	for _, name := range sandboxOS {
		os.RawSetString(name, full.RawGetString(name))
	}
	L.SetGlobal("os", os)
	replaceStatelessBuiltins(L)
	lib := &sharedLib{globals: compacted(L.G.Global), libs: []string{"string", "table", "math", "os"}, funcs: map[*lua.LFunction]bool{}}
	guard := func(v lua.LValue) {
		if f, ok := v.(*lua.LFunction); ok && f.IsG && !lib.funcs[f] {
			f.GFunction = guardShared(f.GFunction)
			lib.funcs[f] = true
		}
	}
	lib.globals.ForEach(func(_, v lua.LValue) { guard(v) })
	for _, name := range lib.libs {
		t := compacted(lib.globals.RawGetString(name).(*lua.LTable))
		lib.globals.RawSetString(name, t)
		t.ForEach(func(_, v lua.LValue) { guard(v) })
	}
	return lib
}

// compacted is a copy of t with its maps at their least size, without the
// keys t removed (gopher-lua keeps a removed key in the list `next` walks
// and a map grown key by key is up to twice its size): copies of it
// (copyTable) are as small as they can be.
func compacted(t *lua.LTable) *lua.LTable {
	var names []string
	var vals []lua.LValue
	for k, v := t.Next(lua.LNil); k != lua.LNil; k, v = t.Next(k) {
		name, ok := k.(lua.LString)
		if !ok {
			panic(fmt.Sprintf("luaapi: a library table has a %s key", k.Type()))
		}
		names, vals = append(names, string(name)), append(vals, v)
	}
	return stringTable(names, nil, vals)
}

// replaceStatelessBuiltins swaps the builtins luamods bounds without
// needing its State (table.sort, unpack, os.date) and ipairs, whose
// gopher-lua version allocates its index twice a step; string.dump goes.
func replaceStatelessBuiltins(L *lua.LState) {
	if str, ok := L.GetGlobal("string").(*lua.LTable); ok {
		str.RawSetString("dump", lua.LNil)
	}
	if tbl, ok := L.GetGlobal("table").(*lua.LTable); ok {
		tbl.RawSetString("sort", L.NewFunction(tableSort))
	}
	L.SetGlobal("unpack", L.NewFunction(baseUnpack))
	L.SetGlobal("ipairs", L.NewClosure(baseIpairs, L.NewFunction(ipairsNext)))
	if os, ok := L.GetGlobal("os").(*lua.LTable); ok {
		if date, ok := os.RawGetString("date").(*lua.LFunction); ok && date.IsG {
			os.RawSetString("date", L.NewFunction(osDate(date.GFunction)))
		}
	}
}

// open gives L the sandboxed standard library: its globals table filled
// with copies of the library's, each library table a copy of its own, and
// the string metatable pointing at L's string table.
func (lib *sharedLib) open(L *lua.LState) {
	globals := L.G.Global
	copyTable(globals, lib.globals)
	globals.RawSetString("_G", globals)
	for _, name := range lib.libs {
		t := &lua.LTable{Metatable: lua.LNil}
		copyTable(t, lib.globals.RawGetString(name).(*lua.LTable))
		globals.RawSetString(name, t)
	}
	str := globals.RawGetString("string").(*lua.LTable)
	str.RawSetString("__index", str)
	L.SetMetatable(lua.LString(""), str)
}

// copyTable gives dst, an empty table, src's fields (not its metatable).
func copyTable(dst, src *lua.LTable) {
	if !directTables {
		src.ForEach(func(k, v lua.LValue) { dst.RawSet(k, v) })
		return
	}
	d, s := layoutOf(dst), layoutOf(src)
	d.array = slices.Clone(s.array)
	d.dict = maps.Clone(s.dict)
	d.strdict = maps.Clone(s.strdict)
	d.keys = slices.Clone(s.keys)
	d.k2i = maps.Clone(s.k2i)
}

// smallInts are the Lua numbers 0 to 1023 as values, made once: a float64
// put in an interface is otherwise an allocation each time.
var smallInts = func() (out [1024]lua.LValue) {
	for i := range out {
		out[i] = lua.LNumber(i)
	}
	return out
}()

// intValue is i as a Lua value, without allocating for small ones.
func intValue(i int) lua.LValue {
	if i >= 0 && i < len(smallInts) {
		return smallInts[i]
	}
	return lua.LNumber(i)
}

// baseIpairs is ipairs(t): the iterator, t and 0.
func baseIpairs(L *lua.LState) int {
	t := L.CheckTable(1)
	L.Push(L.Get(lua.UpvalueIndex(1)))
	L.Push(t)
	L.Push(intValue(0))
	return 3
}

// ipairsNext is ipairs' iterator: i+1 and t[i+1], nothing at the first nil.
func ipairsNext(L *lua.LState) int {
	t := L.CheckTable(1)
	i := L.CheckInt(2) + 1
	v := t.RawGetInt(i)
	if v == lua.LNil {
		return 0
	}
	L.Push(intValue(i))
	L.Push(v)
	return 2
}
