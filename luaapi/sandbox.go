package luaapi

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// DefaultMaxStringSize caps a string built by string.rep, format, gsub,
// table.concat or api.json.encode when Env.MaxStringSize is zero: a builtin
// runs to its end, so its size is its bound (gopherlua.md §1.6).
const DefaultMaxStringSize = 16 << 20

// sandboxRemoved are the base functions a sandboxed module never sees
// (design §4): they read files, compile code at run time, reach other
// functions' environments, or stop the whole process for a GC.
var sandboxRemoved = []string{
	"dofile", "loadfile", "load", "loadstring", "getfenv", "setfenv",
	"collectgarbage", "module", "require", "newproxy", "_printregs", "print",
}

// sandboxOS is what a sandboxed module keeps of the os library.
var sandboxOS = []string{"time", "clock", "date", "difftime"}

// openLibs opens the standard library the module may use and replaces the
// functions that must behave differently in luamods.
func (s *State) openLibs() error {
	L := s.L
	if s.opts.Sandbox {
		stdlib().open(L)
	} else {
		L.OpenLibs()
		L.SetTop(0)
		replaceStatelessBuiltins(L)
	}
	s.replaceBuiltins()
	L.SetGlobal("print", L.NewFunction(s.print))
	L.SetGlobal("error", L.NewFunction(s.baseError))
	L.SetGlobal("require", L.NewFunction(s.require))
	L.SetField(L.Get(lua.RegistryIndex), "luamods.loaded", L.CreateTable(0, 4))
	return s.installPrelude()
}

// installPrelude replaces pcall and xpcall with versions that let the
// protected function wait on Go.
func (s *State) installPrelude() error {
	L := s.L
	L.Push(L.NewFunctionFromProto(preludeProto))
	L.Push(L.NewFunction(basePcall))
	L.Push(L.NewFunction(baseXpcall))
	L.Push(L.GetGlobal("error"))
	if err := L.PCall(3, 3, nil); err != nil {
		return fmt.Errorf("luaapi: prelude: %w", err)
	}
	L.SetGlobal("pcall", L.Get(-3))
	L.SetGlobal("xpcall", L.Get(-2))
	s.wrapAsync = L.Get(-1).(*lua.LFunction)
	L.Pop(3)
	return nil
}

// asyncLua returns the Lua function a module calls for an asynchronous api
// function: the raw Go function wrapped by the prelude.
func (s *State) asyncLua(name string, parse func(L *lua.LState) (AsyncFunc, error)) *lua.LFunction {
	L := s.L
	L.Push(s.wrapAsync)
	L.Push(L.NewFunction(asyncFunction(name, parse)))
	L.Call(1, 1)
	fn := L.Get(-1).(*lua.LFunction)
	L.Pop(1)
	return fn
}

// replaceBuiltins swaps the builtins whose gopher-lua versions can outlive
// a deadline or build unbounded results for the bounded ones of strlib.go,
// pattern.go and format.go that depend on the State's limits (the others:
// replaceStatelessBuiltins).
func (s *State) replaceBuiltins() {
	L := s.L
	str := L.GetGlobal("string").(*lua.LTable)
	for name, fn := range map[string]lua.LGFunction{
		"rep":     s.stringRep,
		"gsub":    s.stringGsub,
		"format":  s.stringFormat,
		"byte":    s.stringByte,
		"find":    s.stringFind(true),
		"match":   s.stringFind(false),
		"gmatch":  s.stringGmatch,
		"upper":   s.stringCase(strings.ToUpper),
		"lower":   s.stringCase(strings.ToLower),
		"reverse": s.stringCase(reverse),
	} {
		str.RawSetString(name, L.NewFunction(fn))
	}
	str.RawSetString("gfind", str.RawGetString("gmatch"))
	if tbl, ok := L.GetGlobal("table").(*lua.LTable); ok {
		tbl.RawSetString("concat", L.NewFunction(s.tableConcat))
	}
}

func (s *State) maxString() int {
	if n := s.opts.Env.MaxStringSize; n > 0 {
		return n
	}
	return DefaultMaxStringSize
}

// maxTableErrors bounds the positions kept for error tables.
const maxTableErrors = 256

// baseError is error(value [, level]) that also remembers where an error
// table was raised: tables carry no position, and a thread's error has no
// traceback, so this is how "file:line" reaches the log for them.
func (s *State) baseError(L *lua.LState) int {
	obj := L.CheckAny(1)
	level := L.OptInt(2, 1)
	if level <= 0 {
		L.Error(obj, level)
		return 0
	}
	// Lua's level: 1 is the function that called error, 2 its caller. (gopher-lua's
	// own error reports level 2 at level 1's line, so luamods positions it.)
	where := L.Where(level)
	if strings.HasPrefix(where, "[G]") { // a Go caller, such as pcall: no position, as in PUC Lua
		where = ""
	}
	switch x := obj.(type) {
	case *lua.LTable:
		if len(s.tableErrors) >= maxTableErrors {
			clear(s.tableErrors)
		}
		s.tableErrors[x] = trimWhere(where)
	case lua.LString:
		if where != "" {
			obj = lua.LString(where + " " + string(x))
		}
	}
	L.Error(obj, 0)
	return 0
}

// print writes its arguments to the module's log at info level.
func (s *State) print(L *lua.LState) int {
	parts := make([]string, L.GetTop())
	for i := range parts {
		parts[i] = L.ToStringMeta(L.Get(i + 1)).String()
	}
	s.log.Info(clipText(strings.Join(parts, "\t"), maxLogText), "source", "print")
	return 0
}

var requireName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)

// insideDir resolves the symbolic links of path and returns it when it
// stays inside dir (resolved too): a link out of the module's folder is
// refused.
func insideDir(dir, path string) (string, error) {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", err
	}
	if rel, err := filepath.Rel(root, real); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%s leads to %s, outside the module's folder %s", path, real, root)
	}
	return real, nil
}

// require(name) loads name (a.b → a/b.lua) from the module's own folder,
// once per state, and returns what the file returns (true if nothing).
func (s *State) require(L *lua.LState) int {
	name := L.CheckString(1)
	loaded := L.GetField(L.Get(lua.RegistryIndex), "luamods.loaded").(*lua.LTable)
	if v := loaded.RawGetString(name); v != lua.LNil {
		L.Push(v)
		return 1
	}
	if !requireName.MatchString(name) {
		L.RaiseError("require: %q is not a module name (letters, digits, _ and dots)", name)
	}
	if s.opts.Dir == "" {
		L.RaiseError("require: module %s has no folder to load %q from", s.opts.Module, name)
	}
	path := filepath.Join(s.opts.Dir, filepath.FromSlash(strings.ReplaceAll(name, ".", "/"))+".lua")
	if _, err := os.Stat(path); err != nil {
		L.RaiseError("require: module %q not found: no file %s", name, path)
	}
	if _, err := insideDir(s.opts.Dir, path); err != nil {
		L.RaiseError("require: module %q: %v", name, err)
	}
	proto, err := s.opts.Env.compile(path)
	if err != nil {
		L.RaiseError("require: %v", err)
	}
	L.Push(L.NewFunctionFromProto(proto))
	L.Push(lua.LString(name))
	L.Call(1, 1)
	v := L.Get(-1)
	L.Pop(1)
	if v == lua.LNil {
		v = lua.LTrue
	}
	loaded.RawSetString(name, v)
	L.Push(v)
	return 1
}
