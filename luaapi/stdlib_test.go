package luaapi

import (
	"context"
	"fmt"
	"slices"
	"strings"
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

// ipairs, replaced so that its indices cost no allocation, walks what
// gopher-lua's walks and fails as it does.
func TestIpairsIsGopherLuas(t *testing.T) {
	for _, script := range []string{
		`local out = {} for i, v in ipairs({10, 20, nil, 40}) do out[#out+1] = i .. "=" .. v end return table.concat(out, ",")`,
		`local n = 0 for i in ipairs({}) do n = n + 1 end return n`,
		`local t = {} for i = 1, 2000 do t[i] = i end local sum = 0 for i, v in ipairs(t) do sum = sum + i * v end return sum`,
		`local f, t, i = ipairs({"a"}) return type(f), #t, i, f(t, 0)`,
		`local ok, err = pcall(ipairs, nil) return ok, err`,
		`local ok, err = pcall(ipairs) return ok, err`,
	} {
		want := runPlain(t, script)
		s, _ := newTestState(t, evalModule(script), nil)
		got, err := callRun(t, s)
		if err != nil {
			t.Fatalf("%s: %v", script, err)
		}
		if fmt.Sprint(got) != want { // positions aside: luamods' pcall and gopher-lua's place errors differently
			t.Errorf("%s: got %v, gopher-lua's ipairs gives %s", script, got, want)
		}
	}
}

// runPlain runs script in a plain gopher-lua state and renders its results
// as callRun's would be, without the position gopher-lua's pcall gives an
// error message (luamods' leaves it to error's level).
func runPlain(t *testing.T, script string) string {
	t.Helper()
	L := lua.NewState()
	defer L.Close()
	if err := L.DoString("return (function() " + script + " end)()"); err != nil {
		t.Fatalf("%s: %v", script, err)
	}
	var out []any
	for i := 1; i <= L.GetTop(); i++ {
		v, err := FromLua(L.Get(i))
		if err != nil {
			t.Fatal(err)
		}
		if msg, ok := v.(string); ok {
			v = strings.TrimPrefix(msg, "<string>:1: ")
		}
		out = append(out, v)
	}
	return fmt.Sprint(out)
}

// An ipairs loop allocates nothing per step.
func TestIpairsStepsWithoutAllocating(t *testing.T) {
	L := lua.NewState(stateOptions)
	defer L.Close()
	stdlib().open(L)
	if err := L.DoString(`t = {} for i = 1, 100 do t[i] = true end
		function walk() local n = 0 for i, v in ipairs(t) do n = n + i end return n end`); err != nil {
		t.Fatal(err)
	}
	walk := L.GetGlobal("walk")
	run := func() {
		if err := L.CallByParam(lua.P{Fn: walk, NRet: 1, Protect: true}); err != nil {
			t.Fatal(err)
		}
		L.Pop(1)
	}
	run()
	if n := testing.AllocsPerRun(20, run); n > 10 {
		t.Fatalf("a 100-step ipairs loop allocated %v times", n)
	}
}
