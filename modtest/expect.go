package modtest

import (
	"fmt"

	lua "github.com/yuin/gopher-lua"

	"luamods/luaapi"
)

// expectSource is the assertion library of test files. Failures are raised
// at the test's line (level 2).
const expectSource = `
local describe, raise, type, pairs, tostring, pcall, find = ...
local function deep_eq(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  for k, v in pairs(a) do if not deep_eq(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end
local function fail(msg, text) raise((msg and (msg .. ": ") or "") .. text) end
local expect = {}
function expect.eq(got, want, msg)
  if not deep_eq(got, want) then fail(msg, "expected " .. describe(want) .. ", got " .. describe(got)) end
end
function expect.ne(got, other, msg)
  if deep_eq(got, other) then fail(msg, "expected anything but " .. describe(other)) end
end
function expect.truthy(v, msg) if not v then fail(msg, "expected a true value, got " .. describe(v)) end end
function expect.falsy(v, msg) if v then fail(msg, "expected false or nil, got " .. describe(v)) end end
function expect.contains(haystack, needle, msg)
  if type(haystack) == "string" then
    if not find(haystack, needle, 1, true) then fail(msg, describe(haystack) .. " does not contain " .. describe(needle)) end
    return
  end
  if type(haystack) == "table" then
    for _, v in pairs(haystack) do if deep_eq(v, needle) then return end end
  end
  fail(msg, describe(haystack) .. " does not contain " .. describe(needle))
end
function expect.error(fn, pattern, ...)
  local ok, err = pcall(fn, ...)
  if ok then fail(nil, "expected an error") end
  local text = type(err) == "table" and describe(err) or tostring(err)
  if pattern and not find(text, pattern, 1, true) then fail(nil, "expected an error containing " .. describe(pattern) .. ", got " .. text) end
  return err
end
return expect
`

var expectProto = mustCompile(expectSource, "=expect")

func mustCompile(src, name string) *lua.FunctionProto {
	p, err := luaapi.Compile(src, name)
	if err != nil {
		panic(err)
	}
	return p
}

// raiseAtTest raises its message at the first stack frame outside the
// expect library: the test's line.
func raiseAtTest(L *lua.LState) int {
	msg := L.CheckString(1)
	for level := 1; ; level++ {
		dbg, ok := L.GetStack(level)
		if !ok {
			break
		}
		if _, err := L.GetInfo("Sl", dbg, lua.LNil); err != nil {
			break
		}
		if dbg.Source != "=expect" && dbg.CurrentLine > 0 {
			msg = fmt.Sprintf("%s:%d: %s", dbg.Source, dbg.CurrentLine, msg)
			break
		}
	}
	L.Error(lua.LString(msg), 0)
	return 0
}

// installExpect sets the global expect. Owner goroutine only.
func installExpect(L *lua.LState) {
	L.Push(L.NewFunctionFromProto(expectProto))
	L.Push(L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString(luaapi.Describe(L.Get(1))))
		return 1
	}))
	L.Push(L.NewFunction(raiseAtTest))
	for _, name := range []string{"type", "pairs", "tostring", "pcall"} {
		L.Push(L.GetGlobal(name))
	}
	L.Push(L.GetField(L.GetGlobal("string"), "find"))
	L.Call(7, 1)
	L.SetGlobal("expect", L.Get(-1))
	L.Pop(1)
}
