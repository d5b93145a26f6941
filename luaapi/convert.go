package luaapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	lua "github.com/yuin/gopher-lua"
)

// MaxDepth is how deeply nested a value may be when it crosses between Go and
// Lua. Deeper values (and cyclic tables) are refused with an error.
const MaxDepth = 64

// maxSafeInteger is 2^53: the largest integer a Lua 5.1 number (a float64)
// holds exactly. Larger integers cross as strings.
const maxSafeInteger = 1 << 53

// ErrTooDeep is returned when a value nests deeper than MaxDepth.
var ErrTooDeep = errors.New("luaapi: value nested too deeply (or cyclic)")

// ToLua converts a JSON-like Go value into a Lua value owned by L.
//
// Accepted: nil, bool, all integer and float kinds, string, []byte (as a
// string), json.Number, []any, []string, map[string]any, map[string]string,
// a *Prepared (PrepareArgs), and a Tuple is refused (it only exists as a
// result). Integers beyond ±2^53
// become strings so that no digit is lost. Tables are created with their exact
// size; an empty []any gets the array marker so that it converts back as [].
func ToLua(L *lua.LState, v any) (lua.LValue, error) {
	return toLua(L, v, 0)
}

func toLua(L *lua.LState, v any, depth int) (lua.LValue, error) {
	if depth > MaxDepth {
		return lua.LNil, ErrTooDeep
	}
	switch x := v.(type) {
	case nil:
		return lua.LNil, nil
	case lua.LValue:
		return x, nil
	case *Prepared:
		return x.toLua(L, depth)
	case bool:
		return lua.LBool(x), nil
	case string:
		return lua.LString(x), nil
	case []byte:
		return lua.LString(x), nil
	case float64:
		return lua.LNumber(x), nil
	case float32:
		return lua.LNumber(x), nil
	case int:
		return intToLua(int64(x)), nil
	case int64:
		return intToLua(x), nil
	case int32:
		return lua.LNumber(x), nil
	case uint64:
		if x > maxSafeInteger {
			return lua.LString(strconv.FormatUint(x, 10)), nil
		}
		return lua.LNumber(x), nil
	case json.Number:
		return jsonNumberToLua(x), nil
	case []any:
		t := L.CreateTable(len(x), 0)
		for _, e := range x {
			lv, err := toLua(L, e, depth+1)
			if err != nil {
				return lua.LNil, err
			}
			t.Append(lv)
		}
		if len(x) == 0 {
			markArray(L, t)
		}
		return t, nil
	case []string:
		t := L.CreateTable(len(x), 0)
		for _, e := range x {
			t.Append(lua.LString(e))
		}
		if len(x) == 0 {
			markArray(L, t)
		}
		return t, nil
	case map[string]any:
		var nameBuf [16]string
		var valBuf [16]lua.LValue
		names, vals := nameBuf[:0], valBuf[:0]
		for k, e := range x {
			lv, err := toLua(L, e, depth+1)
			if err != nil {
				return lua.LNil, fmt.Errorf("%s: %w", k, err)
			}
			names, vals = append(names, k), append(vals, lv)
		}
		return stringTable(names, nil, vals), nil
	case map[string]string:
		var nameBuf [16]string
		var valBuf [16]lua.LValue
		names, vals := nameBuf[:0], valBuf[:0]
		for k, e := range x {
			names, vals = append(names, k), append(vals, lua.LString(e))
		}
		return stringTable(names, nil, vals), nil
	default:
		return lua.LNil, fmt.Errorf("luaapi: cannot convert %T to a Lua value", v)
	}
}

func intToLua(i int64) lua.LValue {
	if i > maxSafeInteger || i < -maxSafeInteger {
		return lua.LString(strconv.FormatInt(i, 10))
	}
	return lua.LNumber(i)
}

func jsonNumberToLua(n json.Number) lua.LValue {
	if i, err := n.Int64(); err == nil {
		return intToLua(i)
	}
	if f, err := n.Float64(); err == nil {
		if f == math.Trunc(f) && math.Abs(f) > maxSafeInteger {
			return lua.LString(n.String()) // an integer too large to hold exactly
		}
		return lua.LNumber(f)
	}
	return lua.LString(n.String())
}

// FromLua converts a Lua value into a JSON-like Go value: nil, bool, int64
// (integral numbers within ±2^53), float64, string, []any or map[string]any.
//
// A table is an array when its keys are exactly 1..n (n ≥ 1), or when it is
// empty and carries the array marker (api.json.array, or it arrived as an
// array); every other table is an object whose number keys are written as
// strings. Functions, userdata, threads, NaN and infinities are refused.
//
// At most MaxValues tables and elements are converted (ErrTooLarge): a
// table holding the same table many times expands at every level.
func FromLua(v lua.LValue) (any, error) {
	budget := MaxValues
	return fromLua(v, 0, &budget)
}

// MaxValues bounds the tables and elements of one value leaving Lua.
const MaxValues = 1 << 20

func fromLua(v lua.LValue, depth int, budget *int) (any, error) {
	switch x := v.(type) {
	case *lua.LNilType:
		return nil, nil
	case lua.LBool:
		return bool(x), nil
	case lua.LString:
		return string(x), nil
	case lua.LNumber:
		return numberFromLua(x)
	case *lua.LTable:
		if depth >= MaxDepth {
			return nil, ErrTooDeep
		}
		return tableFromLua(x, depth, budget)
	case *lua.LUserData:
		if isJSONNull(x) {
			return nil, nil
		}
		return nil, fmt.Errorf("luaapi: a %s cannot leave Lua (only nil, booleans, numbers, strings and tables of those)", v.Type())
	default:
		return nil, fmt.Errorf("luaapi: a %s cannot leave Lua (only nil, booleans, numbers, strings and tables of those)", v.Type())
	}
}

func numberFromLua(n lua.LNumber) (any, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("luaapi: number %v has no JSON form", f)
	}
	if f == math.Trunc(f) && math.Abs(f) <= maxSafeInteger {
		return int64(f), nil
	}
	return f, nil
}

func tableFromLua(t *lua.LTable, depth int, budget *int) (any, error) {
	n := t.MaxN()
	if *budget -= n + 1; *budget < 0 {
		return nil, fmt.Errorf("%w (over %d values)", ErrTooLarge, MaxValues)
	}
	if n > 0 && isSequence(t, n) {
		out := make([]any, n)
		for i := 1; i <= n; i++ {
			e, err := fromLua(t.RawGetInt(i), depth+1, budget)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i-1] = e
		}
		return out, nil
	}
	if n == 0 && isMarkedArray(t) {
		if k, _ := t.Next(lua.LNil); k == lua.LNil {
			return []any{}, nil
		}
	}
	out := make(map[string]any)
	var err error
	eachField(t, func(k, e lua.LValue) {
		if err != nil {
			return
		}
		var key string
		switch kk := k.(type) {
		case lua.LString:
			key = string(kk)
		case lua.LNumber:
			key = kk.String()
		default:
			err = fmt.Errorf("luaapi: a %s cannot be an object key", k.Type())
			return
		}
		if *budget--; *budget < 0 {
			err = fmt.Errorf("%w (over %d values)", ErrTooLarge, MaxValues)
			return
		}
		var ge any
		if ge, err = fromLua(e, depth+1, budget); err != nil {
			err = fmt.Errorf("%s: %w", key, err)
			return
		}
		out[key] = ge
	})
	return out, err
}

// isSequence reports whether t's keys are exactly 1..n.
func isSequence(t *lua.LTable, n int) bool {
	count := 0
	seq := true
	eachField(t, func(k, _ lua.LValue) {
		if !seq {
			return
		}
		if num, ok := k.(lua.LNumber); ok && float64(num) == math.Trunc(float64(num)) && num >= 1 && int(num) <= n {
			count++
			return
		}
		seq = false
	})
	return seq && count == n
}

// arrayMarkerKey is the registry key of the metatable that marks a table as
// a JSON array even when it is empty.
const arrayMarkerKey = "luamods.array"

func arrayMarker(L *lua.LState) *lua.LTable {
	if mt, ok := L.GetField(L.Get(lua.RegistryIndex), arrayMarkerKey).(*lua.LTable); ok {
		return mt
	}
	mt := L.CreateTable(0, 1)
	mt.RawSetString("__metatable", lua.LString("array"))
	L.SetField(L.Get(lua.RegistryIndex), arrayMarkerKey, mt)
	return mt
}

func markArray(L *lua.LState, t *lua.LTable) {
	t.Metatable = arrayMarker(L)
}

func isMarkedArray(t *lua.LTable) bool {
	mt, ok := t.Metatable.(*lua.LTable)
	if !ok {
		return false
	}
	s, ok := mt.RawGetString("__metatable").(lua.LString)
	return ok && s == "array"
}
