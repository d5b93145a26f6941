package luaapi

import (
	"context"
	"fmt"

	lua "github.com/yuin/gopher-lua"
)

// CallbackSpec is what a callback call needs of its catalog entry.
type CallbackSpec struct {
	Name string   // "category.name", for errors
	Args []string // argument names: the function gets this many, nil for those not given
	// Mutates is the 1-based index of the argument whose table the
	// callback may change in place and which InvokeCallback returns as
	// the callback left it; 0 for none.
	Mutates int
}

// InvokeCallback calls the callback key with args converted to Lua and
// returns its results in Go values (a function among them, such as an
// on_login callback, stays in Lua: nil here) and, when spec.Mutates is set,
// that argument as the callback left it.
func (s *State) InvokeCallback(ctx context.Context, key Entry, spec *CallbackSpec, args []any) (ret []any, mutated any, err error) {
	var mutable *lua.LTable
	ret, err = s.Invoke(ctx, key, func(L *lua.LState) ([]lua.LValue, error) {
		lv := make([]lua.LValue, len(spec.Args))
		for i := range lv {
			lv[i] = lua.LNil
			if i < len(args) {
				v, err := ToLua(L, args[i])
				if err != nil {
					return nil, fmt.Errorf("argument %s: %w", spec.Args[i], err)
				}
				lv[i] = v
			}
		}
		if spec.Mutates > 0 {
			mutable, _ = lv[spec.Mutates-1].(*lua.LTable)
		}
		return lv, nil
	}, func(L *lua.LState, vals []lua.LValue) ([]any, error) {
		out := make([]any, len(vals))
		for i, v := range vals {
			if v.Type() == lua.LTFunction {
				continue
			}
			gv, err := FromLua(v)
			if err != nil {
				return nil, fmt.Errorf("%s returned an invalid value %d: %w", spec.Name, i+1, err)
			}
			out[i] = gv
		}
		if mutable != nil {
			gv, err := FromLua(mutable)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", spec.Name, spec.Args[spec.Mutates-1], err)
			}
			mutated = gv
		}
		return out, nil
	})
	return ret, mutated, err
}
