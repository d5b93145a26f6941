package luaapi

import (
	"fmt"

	lua "github.com/yuin/gopher-lua"
)

// Prepared is a Go value converted once for the several states a chain of
// callbacks runs in (PrepareArgs). Its scalars are already Lua values, which
// states may share: Lua strings, numbers and booleans are immutable. Its
// maps and slices are lists from which each state builds tables of its own,
// since a module may change the tables it is given.
type Prepared struct {
	scalar lua.LValue  // a scalar; nil for a table or a raw value
	raw    any         // a Lua table or function: converted by ToLua in each state
	list   bool        // elems are an array's elements; else a map's values, by shape
	shape  *tableShape // a map's keys, but those whose value is nil
	elems  []Prepared
}

// PrepareArgs returns args with each argument that converts to Lua replaced
// by its Prepared form, which ToLua turns into the same Lua value at less
// cost. The argument at the 1-based index skip (a mutable one, changed
// from module to module; 0 for none) and arguments that do not convert
// (ToLua will report why, in each state, as before) are kept as they are.
func PrepareArgs(args []any, skip int) []any {
	out := make([]any, len(args))
	for i, a := range args {
		out[i] = a
		if i == skip-1 || a == nil {
			continue
		}
		if p, err := prepare(a, 0); err == nil {
			out[i] = &p
		}
	}
	return out
}

func prepare(v any, depth int) (Prepared, error) {
	if depth > MaxDepth {
		return Prepared{}, ErrTooDeep
	}
	switch x := v.(type) {
	case []any:
		p := Prepared{list: true, elems: make([]Prepared, len(x))}
		for i, e := range x {
			var err error
			if p.elems[i], err = prepare(e, depth+1); err != nil {
				return Prepared{}, err
			}
		}
		return p, nil
	case []string:
		p := Prepared{list: true, elems: make([]Prepared, len(x))}
		for i, e := range x {
			p.elems[i].scalar = lua.LString(e)
		}
		return p, nil
	case map[string]any:
		names := make([]string, 0, len(x))
		p := Prepared{elems: make([]Prepared, 0, len(x))}
		for k, e := range x {
			pe, err := prepare(e, depth+1)
			if err != nil {
				return Prepared{}, fmt.Errorf("%s: %w", k, err)
			}
			if pe.scalar == lua.LNil {
				continue // sets nothing, as ToLua's RawSetString
			}
			names = append(names, k)
			p.elems = append(p.elems, pe)
		}
		p.shape = newShape(names...)
		return p, nil
	case map[string]string:
		names := make([]string, 0, len(x))
		p := Prepared{elems: make([]Prepared, len(x))}
		for k, e := range x {
			p.elems[len(names)].scalar = lua.LString(e)
			names = append(names, k)
		}
		p.shape = newShape(names...)
		return p, nil
	case *lua.LTable, *lua.LFunction, *lua.LUserData, *lua.LState:
		return Prepared{raw: v}, nil
	}
	lv, err := toLua(nil, v, depth) // a scalar: toLua needs no state for it
	return Prepared{scalar: lv}, err
}

// toLua builds p's value in L.
func (p *Prepared) toLua(L *lua.LState, depth int) (lua.LValue, error) {
	switch {
	case p.scalar != nil:
		return p.scalar, nil
	case p.raw != nil:
		return toLua(L, p.raw, depth)
	case p.list:
		t := L.CreateTable(len(p.elems), 0)
		for i := range p.elems {
			lv, err := p.elems[i].toLua(L, depth+1)
			if err != nil {
				return lua.LNil, err
			}
			t.Append(lv)
		}
		if len(p.elems) == 0 {
			markArray(L, t)
		}
		return t, nil
	}
	var valBuf [16]lua.LValue
	vals := valBuf[:0]
	for i := range p.elems {
		lv, err := p.elems[i].toLua(L, depth+1)
		if err != nil {
			return lua.LNil, fmt.Errorf("%s: %w", p.shape.names[i], err)
		}
		vals = append(vals, lv)
	}
	return p.shape.table(vals), nil
}
