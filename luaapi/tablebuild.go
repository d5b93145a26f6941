package luaapi

import (
	"maps"
	"reflect"
	"slices"
	"unsafe"

	lua "github.com/yuin/gopher-lua"
)

// Building a table with string keys through gopher-lua's API costs, for
// every key, a map insert, the key boxed twice into an interface (for the
// key list and the key index that `next` walks) and the growth of all
// three: a 20-key table is about 50 allocations. The functions here build
// the same table in one step: each map and the key list made at its final
// size and each key boxed once, or, for a key list known in advance
// (tableShape), the key index copied from a template. Lua code sees the
// same table: the same fields, `next` and `pairs` in key-list order.
//
// gopher-lua keeps those fields unexported, so this writes them through
// tableLayout, a copy of LTable's layout in gopher-lua v1.1.2 (the version
// go.mod pins). The layout is checked field by field when the package is
// loaded; if it ever differs, every function here falls back to RawSetString.

// tableLayout is lua.LTable's layout in gopher-lua v1.1.2.
type tableLayout struct {
	Metatable lua.LValue
	array     []lua.LValue
	dict      map[lua.LValue]lua.LValue
	strdict   map[string]lua.LValue
	keys      []lua.LValue
	k2i       map[lua.LValue]int
}

// directTables says whether tableLayout matches lua.LTable.
var directTables = sameLayout(reflect.TypeFor[lua.LTable](), reflect.TypeFor[tableLayout]())

// sameLayout reports whether a and b have the same fields: names, types
// and offsets, in order.
func sameLayout(a, b reflect.Type) bool {
	if a.Size() != b.Size() || a.NumField() != b.NumField() {
		return false
	}
	for i := range a.NumField() {
		fa, fb := a.Field(i), b.Field(i)
		if fa.Name != fb.Name || fa.Type != fb.Type || fa.Offset != fb.Offset {
			return false
		}
	}
	return true
}

func layoutOf(t *lua.LTable) *tableLayout { return (*tableLayout)(unsafe.Pointer(t)) }

// boxKeys returns names as Lua values, one allocation for all of them.
func boxKeys(names []string) []lua.LValue {
	block := valueSlab{strs: make([]lua.LString, 0, len(names))} // one block, of their number
	keys := make([]lua.LValue, len(names))
	for i, n := range names {
		keys[i] = block.str(n)
	}
	return keys
}

// stringTable builds a table with string keys: vals[i] under names[i].
// keys, when not nil, are names as Lua values (boxKeys), shared by the
// tables built from one key list. A nil or LNil value sets nothing, as
// RawSetString; a name given twice keeps its last value.
func stringTable(names []string, keys, vals []lua.LValue) *lua.LTable {
	t := &lua.LTable{Metatable: lua.LNil}
	if !directTables {
		for i, name := range names {
			if vals[i] != nil {
				t.RawSetString(name, vals[i])
			}
		}
		return t
	}
	n := 0
	for _, v := range vals {
		if v != nil && v != lua.LNil {
			n++
		}
	}
	if n == 0 {
		return t
	}
	l := layoutOf(t)
	l.strdict = make(map[string]lua.LValue, n)
	l.keys = make([]lua.LValue, 0, n)
	l.k2i = make(map[lua.LValue]int, n)
	for i, name := range names {
		v := vals[i]
		if v == nil || v == lua.LNil {
			continue
		}
		if _, dup := l.strdict[name]; dup {
			l.strdict[name] = v
			continue
		}
		l.strdict[name] = v
		var key lua.LValue
		if keys != nil {
			key = keys[i]
		} else {
			key = lua.LString(name)
		}
		l.k2i[key] = len(l.keys)
		l.keys = append(l.keys, key)
	}
	return t
}

// arrayTable builds the table {vals...} without its nil and LNil values,
// as Append builds it, with its array part at its final size.
func arrayTable(vals []lua.LValue) *lua.LTable {
	t := &lua.LTable{Metatable: lua.LNil}
	if !directTables {
		for _, v := range vals {
			if v != nil {
				t.Append(v)
			}
		}
		return t
	}
	array := make([]lua.LValue, 0, len(vals))
	for _, v := range vals {
		if v != nil && v != lua.LNil {
			array = append(array, v)
		}
	}
	if len(array) > 0 {
		layoutOf(t).array = array
	}
	return t
}

// eachField calls f with each key and value of t, as t.ForEach, but
// without boxing a key into a new interface for each call: the array's
// indices come from smallInts, the other keys from the key list `next`
// walks (in its order).
func eachField(t *lua.LTable, f func(k, v lua.LValue)) {
	if !directTables {
		t.ForEach(f)
		return
	}
	l := layoutOf(t)
	for i, v := range l.array {
		if v != lua.LNil {
			f(intValue(i+1), v)
		}
	}
	for _, k := range l.keys {
		var v lua.LValue
		if name, ok := k.(lua.LString); ok {
			v = l.strdict[string(name)]
		} else {
			v = l.dict[k]
		}
		if v != nil && v != lua.LNil {
			f(k, v)
		}
	}
}

// tableShape is a fixed list of string keys whose tables are built often
// (the request table, a callback argument converted once for a chain of
// modules): the key list and its index are made once and copied.
type tableShape struct {
	names []string
	keys  []lua.LValue
	k2i   map[lua.LValue]int
}

// newShape returns the shape of names, which must be distinct.
func newShape(names ...string) *tableShape {
	sh := &tableShape{names: names, keys: boxKeys(names), k2i: make(map[lua.LValue]int, len(names))}
	for i, k := range sh.keys {
		sh.k2i[k] = i
	}
	return sh
}

// table builds the table with vals[i] under the shape's i-th name. Nil or
// LNil values set nothing.
func (sh *tableShape) table(vals []lua.LValue) *lua.LTable {
	if !directTables || slices.ContainsFunc(vals, func(v lua.LValue) bool { return v == nil || v == lua.LNil }) {
		return stringTable(sh.names, sh.keys, vals)
	}
	t := &lua.LTable{Metatable: lua.LNil}
	l := layoutOf(t)
	l.strdict = make(map[string]lua.LValue, len(sh.names))
	for i, name := range sh.names {
		l.strdict[name] = vals[i]
	}
	l.keys = slices.Clone(sh.keys)
	l.k2i = maps.Clone(sh.k2i)
	return t
}
