package luaapi

import (
	"unsafe"

	lua "github.com/yuin/gopher-lua"
)

// valueSlab makes Lua string and number values in blocks. A Go string or
// float64 put in an interface (lua.LValue) is copied to the heap, one
// allocation per value; this copies valueSlabSize of them into one block,
// as gopher-lua's own allocator does for the numbers its VM makes
// (alloc.go). A block is freed once none of its values is reachable, so a
// string value kept long may keep the others of its block, and the strings
// they are slices of, alive with it: blocks are small for that reason.
type valueSlab struct {
	strs []lua.LString
	nums []lua.LNumber
}

const valueSlabSize = 32

// eface is the layout of a Go interface value.
type eface struct {
	typ  unsafe.Pointer
	word unsafe.Pointer
}

// str returns s as a Lua value.
func (a *valueSlab) str(s string) lua.LValue {
	if s == "" {
		return lua.LString("")
	}
	if len(a.strs) == cap(a.strs) {
		a.strs = make([]lua.LString, 0, valueSlabSize)
	}
	a.strs = append(a.strs, lua.LString(s))
	v := lua.LValue(lua.LString(""))
	(*eface)(unsafe.Pointer(&v)).word = unsafe.Pointer(&a.strs[len(a.strs)-1])
	return v
}

// num returns n as a Lua value.
func (a *valueSlab) num(n int) lua.LValue {
	if n >= 0 && n < len(smallInts) {
		return smallInts[n]
	}
	if len(a.nums) == cap(a.nums) {
		a.nums = make([]lua.LNumber, 0, valueSlabSize)
	}
	a.nums = append(a.nums, lua.LNumber(n))
	v := lua.LValue(lua.LNumber(0))
	(*eface)(unsafe.Pointer(&v)).word = unsafe.Pointer(&a.nums[len(a.nums)-1])
	return v
}
