package luaapi

import (
	lua "github.com/yuin/gopher-lua"
)

// jsonNull is the Go value inside api.json.null, the value that stands for
// JSON's null (Python's None) where a Lua nil cannot: inside a list, such as
// a {type, state_key} pair of a state filter. It leaves Lua as nil.
type jsonNull struct{}

// registryJSONNull is the registry key of the state's api.json.null.
const registryJSONNull = "luamods.json.null"

// jsonNullValue returns the state's api.json.null, making it on first use:
// one value per state, so that v == api.json.null compares identity.
func jsonNullValue(L *lua.LState) *lua.LUserData {
	reg := L.Get(lua.RegistryIndex)
	if ud, ok := L.GetField(reg, registryJSONNull).(*lua.LUserData); ok {
		return ud
	}
	ud := L.NewUserData()
	ud.Value = jsonNull{}
	mt := L.CreateTable(0, 2)
	mt.RawSetString("__tostring", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString("null"))
		return 1
	}))
	mt.RawSetString("__metatable", lua.LString("json.null"))
	ud.Metatable = mt
	L.SetField(reg, registryJSONNull, ud)
	return ud
}

func isJSONNull(ud *lua.LUserData) bool {
	_, ok := ud.Value.(jsonNull)
	return ok
}

// apiIsArray is api.json.is_array(v): whether v leaves Lua as a JSON array
// (a table keyed exactly 1..n, or an empty table marked with api.json.array
// or that arrived as an array), as Python's isinstance(v, list).
func apiIsArray(L *lua.LState) int {
	t, ok := L.Get(1).(*lua.LTable)
	if !ok {
		L.Push(lua.LFalse)
		return 1
	}
	if n := t.MaxN(); n > 0 {
		L.Push(lua.LBool(isSequence(t, n)))
		return 1
	}
	k, _ := t.Next(lua.LNil)
	L.Push(lua.LBool(k == lua.LNil && isMarkedArray(t)))
	return 1
}
