package luaapi

import (
	"context"
	"fmt"
	"slices"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// A state's standard library, copied from the shared one, has the names
// gopher-lua's libraries give a sandboxed state opened the long way.
func TestSharedStdlibHasTheSandboxedNames(t *testing.T) {
	L := lua.NewState(stateOptions)
	defer L.Close()
	for _, open := range sandboxLibs {
		open(L)
	}
	for _, name := range sandboxRemoved {
		L.SetGlobal(name, lua.LNil)
	}
	s, _ := newTestState(t, evalModule(`return 1`), nil)
	names := func(t *lua.LTable) []string {
		var out []string
		t.ForEach(func(k, _ lua.LValue) { out = append(out, k.String()) })
		slices.Sort(out)
		return out
	}
	var got, want map[string][]string
	s.Do(context.Background(), func(SL *lua.LState) {
		got = map[string][]string{"_G": names(SL.G.Global)}
		for _, lib := range []string{"string", "table", "math", "os"} {
			got[lib] = names(SL.GetGlobal(lib).(*lua.LTable))
		}
	})
	want = map[string][]string{"_G": append(names(L.G.Global), "print", "error", "require")}
	slices.Sort(want["_G"])
	want["_G"] = slices.Compact(want["_G"])
	for _, lib := range []string{"string", "table", "math"} {
		want[lib] = names(L.GetGlobal(lib).(*lua.LTable))
	}
	want["string"] = slices.DeleteFunc(want["string"], func(n string) bool { return n == "dump" })
	want["os"] = slices.Sorted(slices.Values(sandboxOS))
	for lib, w := range want {
		if !slices.Equal(got[lib], w) {
			t.Errorf("%s: names %v, want %v", lib, got[lib], w)
		}
	}
}

// Each state has library tables of its own: what a module changes in them,
// the string metatable included, no other module sees.
func TestStatesDoNotShareLibraryTables(t *testing.T) {
	change := `string.upper = function() return "changed" end
		math.pi = 3
		table.extra = true
		_G.global = 1
		return ("x"):upper(), math.pi, table.extra, global`
	read := `return ("x"):upper(), math.pi, table.extra, global, string.__index == string`
	a, _ := newTestState(t, evalModule(change), nil)
	b, _ := newTestState(t, evalModule(read), nil)
	got, err := callRun(t, a)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(got), "[changed 3 true 1]"; got != want {
		t.Fatalf("the changing state sees %v, want %v", got, want)
	}
	got, err = callRun(t, b)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(got), "[X 3.141592653589793 <nil> <nil> true]"; got != want {
		t.Fatalf("another state sees %v, want %v", got, want)
	}
}
