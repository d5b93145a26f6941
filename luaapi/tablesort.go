package luaapi

import (
	"sort"

	lua "github.com/yuin/gopher-lua"
)

// tableSort is table.sort(t [, comp]) looking at the call's deadline every
// patternPoll comparisons: gopher-lua's sorts without a comparator never
// ran a Lua instruction, so a sort of millions of elements could not be
// stopped.
func tableSort(L *lua.LState) int {
	t := L.CheckTable(1)
	var cmp *lua.LFunction
	if L.GetTop() >= 2 && L.Get(2) != lua.LNil {
		cmp = L.CheckFunction(2)
	}
	n := t.Len()
	vals := make([]lua.LValue, n)
	for i := range vals {
		vals[i] = t.RawGetInt(i + 1)
	}
	ctx := L.Context()
	steps := 0
	sort.Sort(luaSorter{vals: vals, less: func(a, b lua.LValue) bool {
		if steps++; steps&(patternPoll-1) == 0 && ctx != nil {
			if err := ctx.Err(); err != nil {
				L.RaiseError("%s", err.Error())
			}
		}
		if cmp == nil {
			return L.LessThan(a, b)
		}
		L.Push(cmp)
		L.Push(a)
		L.Push(b)
		L.Call(2, 1)
		r := lua.LVAsBool(L.Get(-1))
		L.Pop(1)
		return r
	}})
	for i, v := range vals {
		t.RawSetInt(i+1, v)
	}
	return 0
}

type luaSorter struct {
	vals []lua.LValue
	less func(a, b lua.LValue) bool
}

func (s luaSorter) Len() int           { return len(s.vals) }
func (s luaSorter) Less(i, j int) bool { return s.less(s.vals[i], s.vals[j]) }
func (s luaSorter) Swap(i, j int)      { s.vals[i], s.vals[j] = s.vals[j], s.vals[i] }
