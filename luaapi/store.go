package luaapi

import (
	"context"
	"fmt"
	"math"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// Store is api.store's backend for one module: the engine binds it to the
// module's namespace, so that two modules never see each other's keys.
// Values are JSON; expired keys are never returned; Add and Incr are atomic
// across every process sharing the backend.
type Store interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	Incr(ctx context.Context, key string, n int64, ttl time.Duration) (int64, error)
	Delete(ctx context.Context, key string) (bool, error)
	Keys(ctx context.Context, prefix string, limit int, cursor string) (keys []string, next string, err error)
}

// Limits of api.store.
const (
	MaxStoreKey      = 1 << 10 // bytes of a key
	MaxStoreValue    = 1 << 20 // bytes of a value's JSON
	DefaultKeysLimit = 100     // keys per page when no limit is given
	MaxKeysLimit     = 1000
)

// storeTable builds api.store: get, set, add, incr, delete, keys, each an
// asynchronous function.
func (s *State) storeTable() *lua.LTable {
	t := s.L.CreateTable(0, 6)
	for name, parse := range map[string]func(*lua.LState) (AsyncFunc, error){
		"get": s.parseStoreGet, "set": s.parseStoreSet, "add": s.parseStoreAdd,
		"incr": s.parseStoreIncr, "delete": s.parseStoreDelete, "keys": s.parseStoreKeys,
	} {
		t.RawSetString(name, s.asyncLua("store."+name, parse))
	}
	return t
}

// storeAndKey is the store and the key (argument 1) of a store operation.
func (s *State) storeAndKey(L *lua.LState) (Store, string, error) {
	st, err := s.store()
	if err != nil {
		return nil, "", err
	}
	key, err := storeKey(L, 1)
	return st, key, err
}

// store returns the module's store or an error saying there is none.
func (s *State) store() (Store, error) {
	if s.opts.Env.Store == nil {
		return nil, fmt.Errorf("no store is configured here")
	}
	return s.opts.Env.Store, nil
}

func storeKey(L *lua.LState, n int) (string, error) {
	k, ok := L.Get(n).(lua.LString)
	if !ok || len(k) == 0 {
		return "", fmt.Errorf("the key must be a non-empty string, not %s", describeArg(L.Get(n)))
	}
	if len(k) > MaxStoreKey {
		return "", fmt.Errorf("the key is %d bytes, over the limit of %d", len(k), MaxStoreKey)
	}
	return string(k), nil
}

func describeArg(v lua.LValue) string {
	if v == lua.LNil {
		return "nil"
	}
	return "a " + v.Type().String()
}

// storeTTL reads {ttl = seconds} from argument n.
func storeTTL(L *lua.LState, n int) (time.Duration, error) {
	opts, ok := L.Get(n).(*lua.LTable)
	if !ok {
		if L.Get(n) != lua.LNil {
			return 0, fmt.Errorf("options must be a table such as {ttl = 60}")
		}
		return 0, nil
	}
	switch v := opts.RawGetString("ttl").(type) {
	case *lua.LNilType:
		return 0, nil
	case lua.LNumber:
		if v <= 0 || math.IsInf(float64(v), 0) || math.IsNaN(float64(v)) {
			return 0, fmt.Errorf("ttl must be a positive number of seconds")
		}
		return floatDuration(float64(v), time.Second), nil
	default:
		return 0, fmt.Errorf("ttl must be a number of seconds, not a %s", v.Type())
	}
}

// storeValue encodes argument n as JSON (a copy of the value).
func storeValue(L *lua.LState, n int) ([]byte, error) {
	v := L.Get(n)
	if v == lua.LNil {
		return nil, fmt.Errorf("the value must not be nil (use store.delete to remove a key)")
	}
	b, err := EncodeLuaJSON(v)
	if err != nil {
		return nil, fmt.Errorf("the value: %w", err)
	}
	if len(b) > MaxStoreValue {
		return nil, fmt.Errorf("the value is %d bytes as JSON, over the limit of %d", len(b), MaxStoreValue)
	}
	return b, nil
}

func (s *State) parseStoreGet(L *lua.LState) (AsyncFunc, error) {
	st, key, err := s.storeAndKey(L)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (func(*lua.LState) []lua.LValue, error) {
		raw, ok, err := st.Get(ctx, key)
		if err != nil || !ok {
			return nil, err // nil: no results, so the caller gets nil
		}
		v, err := DecodeJSON(raw)
		if err != nil {
			return nil, fmt.Errorf("the stored value of %q is not JSON: %w", key, err)
		}
		return func(L *lua.LState) []lua.LValue {
			lv, _ := ToLua(L, v)
			return []lua.LValue{lv}
		}, nil
	}, nil
}

// parseStoreWrite reads (key, value, opts) for set and add.
func (s *State) parseStoreWrite(L *lua.LState) (st Store, key string, value []byte, ttl time.Duration, err error) {
	if st, key, err = s.storeAndKey(L); err != nil {
		return
	}
	if value, err = storeValue(L, 2); err != nil {
		return
	}
	ttl, err = storeTTL(L, 3)
	return
}

func (s *State) parseStoreSet(L *lua.LState) (AsyncFunc, error) {
	st, key, value, ttl, err := s.parseStoreWrite(L)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (func(*lua.LState) []lua.LValue, error) {
		return nil, st.Set(ctx, key, value, ttl)
	}, nil
}

func (s *State) parseStoreAdd(L *lua.LState) (AsyncFunc, error) {
	st, key, value, ttl, err := s.parseStoreWrite(L)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (func(*lua.LState) []lua.LValue, error) {
		added, err := st.Add(ctx, key, value, ttl)
		return boolResult(added), err
	}, nil
}

func boolResult(b bool) func(*lua.LState) []lua.LValue {
	return func(*lua.LState) []lua.LValue { return []lua.LValue{lua.LBool(b)} }
}

func (s *State) parseStoreIncr(L *lua.LState) (AsyncFunc, error) {
	st, key, err := s.storeAndKey(L)
	if err != nil {
		return nil, err
	}
	n := int64(1)
	switch v := L.Get(2).(type) {
	case *lua.LNilType:
	case lua.LNumber:
		if float64(v) != math.Trunc(float64(v)) || math.Abs(float64(v)) > maxSafeInteger {
			return nil, fmt.Errorf("the increment must be a whole number, not %v", v)
		}
		n = int64(v)
	default:
		return nil, fmt.Errorf("the increment must be a number, not a %s", v.Type())
	}
	ttl, err := storeTTL(L, 3)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (func(*lua.LState) []lua.LValue, error) {
		v, err := st.Incr(ctx, key, n, ttl)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", key, err)
		}
		return func(*lua.LState) []lua.LValue { return []lua.LValue{intToLua(v)} }, nil
	}, nil
}

func (s *State) parseStoreDelete(L *lua.LState) (AsyncFunc, error) {
	st, key, err := s.storeAndKey(L)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (func(*lua.LState) []lua.LValue, error) {
		existed, err := st.Delete(ctx, key)
		return boolResult(existed), err
	}, nil
}

// parseStoreKeys is store.keys(prefix, {limit=, cursor=}) → list, next_cursor.
func (s *State) parseStoreKeys(L *lua.LState) (AsyncFunc, error) {
	st, err := s.store()
	if err != nil {
		return nil, err
	}
	prefix := ""
	if v, ok := L.Get(1).(lua.LString); ok {
		prefix = string(v)
	} else if L.Get(1) != lua.LNil {
		return nil, fmt.Errorf("the prefix must be a string")
	}
	limit, cursor := DefaultKeysLimit, ""
	if opts, ok := L.Get(2).(*lua.LTable); ok {
		if v, ok := opts.RawGetString("limit").(lua.LNumber); ok {
			if v < 1 || v > MaxKeysLimit {
				return nil, fmt.Errorf("limit must be from 1 to %d", MaxKeysLimit)
			}
			limit = int(v)
		}
		if v, ok := opts.RawGetString("cursor").(lua.LString); ok {
			cursor = string(v)
		}
	}
	return func(ctx context.Context) (func(*lua.LState) []lua.LValue, error) {
		keys, next, err := st.Keys(ctx, prefix, limit, cursor)
		if err != nil {
			return nil, err
		}
		return func(L *lua.LState) []lua.LValue {
			list, _ := ToLua(L, keys)
			if keys == nil {
				list, _ = ToLua(L, []string{})
			}
			var nextLV lua.LValue = lua.LNil
			if next != "" {
				nextLV = lua.LString(next)
			}
			return []lua.LValue{list, nextLV}
		}, nil
	}, nil
}
