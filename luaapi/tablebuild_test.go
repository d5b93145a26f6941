package luaapi

import (
	"reflect"
	"slices"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// The layout copy must match the pinned gopher-lua: if an upgrade changes
// LTable, the fallback keeps tables right but slow, and this says so.
func TestTableLayoutMatchesGopherLua(t *testing.T) {
	if !directTables {
		t.Fatal("lua.LTable's fields differ from tableLayout: update tablebuild.go for this gopher-lua")
	}
	type other struct {
		Metatable lua.LValue
		Array     []lua.LValue // a name LTable does not have
	}
	if sameLayout(reflect.TypeFor[lua.LTable](), reflect.TypeFor[other]()) {
		t.Fatal("sameLayout accepts a different struct")
	}
}

// A table built in one step is the table RawSetString builds: the same
// fields, the same walk order for next, and it takes new keys, removals
// and walks after them as any other table.
func TestBuiltTablesBehaveAsRawSetTables(t *testing.T) {
	shape := newShape("a", "b", "c")
	cases := []struct {
		name  string
		names []string
		vals  []lua.LValue
		build func(names []string, vals []lua.LValue) *lua.LTable
	}{
		{"stringTable", []string{"x", "y", "z"}, []lua.LValue{lua.LNumber(1), lua.LString("two"), lua.LTrue}, func(n []string, v []lua.LValue) *lua.LTable { return stringTable(n, nil, v) }},
		{"stringTable with boxed keys", []string{"x", "y"}, []lua.LValue{lua.LNumber(1), lua.LNumber(2)}, func(n []string, v []lua.LValue) *lua.LTable { return stringTable(n, boxKeys(n), v) }},
		{"nil and LNil set nothing", []string{"x", "y", "z"}, []lua.LValue{nil, lua.LNumber(2), lua.LNil}, func(n []string, v []lua.LValue) *lua.LTable { return stringTable(n, nil, v) }},
		{"a repeated name keeps its last value", []string{"x", "y", "x"}, []lua.LValue{lua.LNumber(1), lua.LNumber(2), lua.LNumber(3)}, func(n []string, v []lua.LValue) *lua.LTable { return stringTable(n, nil, v) }},
		{"empty", nil, nil, func(n []string, v []lua.LValue) *lua.LTable { return stringTable(n, nil, v) }},
		{"shape", shape.names, []lua.LValue{lua.LNumber(1), lua.LString("b"), lua.LFalse}, func(_ []string, v []lua.LValue) *lua.LTable { return shape.table(v) }},
		{"shape with a nil", shape.names, []lua.LValue{lua.LNumber(1), lua.LNil, lua.LFalse}, func(_ []string, v []lua.LValue) *lua.LTable { return shape.table(v) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := &lua.LTable{Metatable: lua.LNil}
			for i, n := range tc.names {
				if tc.vals[i] != nil {
					want.RawSetString(n, tc.vals[i])
				}
			}
			got := tc.build(tc.names, tc.vals)
			if g, w := walk(got), walk(want); !reflect.DeepEqual(g, w) {
				t.Fatalf("next walks %v, want %v", g, w)
			}
			for _, tb := range []*lua.LTable{got, want} {
				tb.RawSetString("new", lua.LNumber(9))
				tb.RawSetString("y", lua.LNil)
				tb.RawSetInt(1, lua.LString("first"))
			}
			if g, w := walk(got), walk(want); !reflect.DeepEqual(g, w) {
				t.Fatalf("after changes next walks %v, want %v", g, w)
			}
		})
	}
}

// walk lists a table's pairs in next's order.
func walk(t *lua.LTable) []string {
	var out []string
	for k, v := t.Next(lua.LNil); k != lua.LNil; k, v = t.Next(k) {
		out = append(out, k.String()+"="+v.String())
	}
	return out
}

// Lua code sees a built table as a plain table: pairs, rawget, length
// and field assignment.
func TestBuiltTablesInLua(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	L.SetGlobal("t", stringTable([]string{"a", "b"}, nil, []lua.LValue{lua.LNumber(1), lua.LNumber(2)}))
	err := L.DoString(`
		local n, sum = 0, 0
		for k, v in pairs(t) do n = n + 1; sum = sum + v end
		assert(n == 2 and sum == 3, "pairs")
		assert(rawget(t, "a") == 1 and t.b == 2, "lookups")
		t.c = 3; t.a = nil
		local keys = {}
		for k in pairs(t) do keys[#keys + 1] = k end
		table.sort(keys)
		assert(table.concat(keys, ",") == "b,c", table.concat(keys, ","))
		assert(next({}) == nil)
	`)
	if err != nil {
		t.Fatal(err)
	}
}

// eachField visits what ForEach visits, in any table a module can build.
func TestEachFieldVisitsWhatForEachDoes(t *testing.T) {
	L := lua.NewState()
	defer L.Close()
	for _, script := range []string{
		`return {}`,
		`return {1, 2, 3}`,
		`return {1, nil, 3, [10] = 10, [2.5] = "x", [-1] = true}`,
		`return {a = 1, b = 2, [true] = "t"}`,
		`local t = {a = 1, b = 2, c = 3} t.b = nil t.d = 4 t.b = 5 return t`,
		`local t = {} for i = 1, 50 do t[i] = i end for i = 1, 50, 2 do t[i] = nil end t.x = 1 return t`,
	} {
		if err := L.DoString(script); err != nil {
			t.Fatal(err)
		}
		tb := L.Get(-1).(*lua.LTable)
		L.Pop(1)
		collect := func(each func(*lua.LTable, func(k, v lua.LValue))) []string {
			var out []string
			each(tb, func(k, v lua.LValue) { out = append(out, k.String()+"="+v.String()) })
			slices.Sort(out)
			return out
		}
		got := collect(eachField)
		want := collect(func(t *lua.LTable, f func(k, v lua.LValue)) { t.ForEach(f) })
		if !slices.Equal(got, want) {
			t.Errorf("%s: eachField visits %v, ForEach %v", script, got, want)
		}
	}
}
