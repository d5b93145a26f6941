package luaapi

import (
	"context"
	"fmt"

	lua "github.com/yuin/gopher-lua"
)

// Load runs the module's compiled chunk and checks that it returns a table
// with an init function (design §2).
func (s *State) Load(ctx context.Context, chunk *Chunk) error {
	proto := chunk.proto
	_, err := s.run(ctx, func(L *lua.LState) (*lua.LFunction, []lua.LValue, error) {
		return L.NewFunctionFromProto(proto), nil, nil
	}, func(L *lua.LState, vals []lua.LValue) ([]any, error) {
		m, ok := vals[0].(*lua.LTable)
		if !ok {
			return nil, &ScriptError{Module: s.opts.Module, Source: proto.SourceName,
				Message: fmt.Sprintf("the module must return a table (local M = {} ... return M), not a %s", vals[0].Type())}
		}
		if _, ok := m.RawGetString("init").(*lua.LFunction); !ok {
			return nil, &ScriptError{Module: s.opts.Module, Source: proto.SourceName,
				Message: "the module table has no init function (function M.init(api, config) ... end)"}
		}
		s.module = m
		return nil, nil
	})
	return err
}

// ParseConfig runs M.parse_config(config, api) when the module has one and
// keeps its result as the config init receives; without one, init gets
// config itself. Registration is not allowed here.
func (s *State) ParseConfig(ctx context.Context, config any) error {
	var fn *lua.LFunction
	var cfg lua.LValue
	var err error
	if !s.Do(ctx, func(L *lua.LState) {
		if cfg, err = ToLua(L, config); err != nil {
			return
		}
		L.SetField(L.Get(lua.RegistryIndex), "luamods.config", cfg)
		fn, _ = s.module.RawGetString("parse_config").(*lua.LFunction)
	}) {
		return s.abandoned(ctx)
	}
	if err != nil || fn == nil {
		return err
	}
	_, err = s.run(ctx, func(L *lua.LState) (*lua.LFunction, []lua.LValue, error) {
		return fn, []lua.LValue{cfg, s.API()}, nil
	}, func(L *lua.LState, vals []lua.LValue) ([]any, error) {
		L.SetField(L.Get(lua.RegistryIndex), "luamods.config", vals[0])
		return nil, nil
	})
	return err
}

// Init runs M.init(api, config), the only time registration is allowed.
func (s *State) Init(ctx context.Context, reg Registrar) error {
	_, err := s.run(ctx, func(L *lua.LState) (*lua.LFunction, []lua.LValue, error) {
		s.phase = phaseInit
		s.reg = reg
		fn := s.module.RawGetString("init").(*lua.LFunction)
		return fn, []lua.LValue{s.API(), L.GetField(L.Get(lua.RegistryIndex), "luamods.config")}, nil
	}, func(*lua.LState, []lua.LValue) ([]any, error) {
		s.phase, s.reg = phaseServe, nil
		return nil, nil
	})
	if err != nil {
		s.Do(context.Background(), func(*lua.LState) { s.phase, s.reg = phaseServe, nil })
	}
	return err
}

// Do runs f as the state's owner and waits for it. f may use L freely but
// must not yield. It reports false when the state closed or ctx ended first.
func (s *State) Do(ctx context.Context, f func(L *lua.LState)) bool {
	done := make(chan struct{})
	job := funcJob(func() { f(s.L); close(done) })
	if !s.post(ctx, job) {
		return false
	}
	return s.wait(ctx, done)
}

// Sync waits until the work queued before it (completions, background
// calls) has run. Unlike Do it always goes through the queue, so it is a
// barrier. It reports false when the state closed or ctx ended first.
func (s *State) Sync(ctx context.Context) bool {
	done := make(chan struct{})
	if !s.post(ctx, funcJob(func() { close(done) })) {
		return false
	}
	return s.wait(ctx, done)
}

// wait waits for done; false when ctx ends or the state stops first.
func (s *State) wait(ctx context.Context, done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	case <-s.stopped:
		return false
	}
}

// Eval compiles src as a chunk named name and runs it in the state with
// `api` and `M` (the module table) in scope. An expression is evaluated and
// its values returned; a statement returns what it returns.
func (s *State) Eval(ctx context.Context, name, src string) ([]string, error) {
	statement := false
	proto, err := Compile("return "+src, name)
	if err != nil {
		statement = true
		proto, err = Compile(src, name)
		if err != nil {
			return nil, err
		}
	}
	vals, err := s.run(ctx, func(L *lua.LState) (*lua.LFunction, []lua.LValue, error) {
		L.SetGlobal("api", s.API())
		if s.module != nil {
			L.SetGlobal("M", s.module)
		}
		return L.NewFunctionFromProto(proto), nil, nil
	}, func(L *lua.LState, vals []lua.LValue) ([]any, error) {
		out := make([]any, len(vals))
		for i, v := range vals {
			out[i] = Describe(v)
		}
		return out, nil
	})
	if statement && len(vals) == 1 && vals[0] == "nil" {
		return nil, err // a statement that returns nothing prints nothing
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = v.(string)
	}
	return out, err
}

// Save runs M.save() when the module has one and returns its result (a
// copyable value), to hand to the next version of the module on reload.
func (s *State) Save(ctx context.Context) (any, error) {
	vals, err := s.CallFunction(ctx, "save")
	if err != nil || len(vals) == 0 {
		return nil, err
	}
	return vals[0], nil
}

// Restore runs M.restore(state) when the module has one.
func (s *State) Restore(ctx context.Context, state any) error {
	_, err := s.CallFunction(ctx, "restore", state)
	return err
}

// CallFunction calls M[name](args...) of the module table, if there is such
// a function, and returns its results; nothing when there is none.
func (s *State) CallFunction(ctx context.Context, name string, args ...any) ([]any, error) {
	var fn *lua.LFunction
	var self lua.LValue // a callable table (api.cached) is passed to its __call
	if !s.Do(ctx, func(L *lua.LState) {
		if s.module == nil {
			return
		}
		switch v := s.module.RawGetString(name).(type) {
		case *lua.LFunction:
			fn = v
		case *lua.LTable:
			if call, ok := L.GetMetaField(v, "__call").(*lua.LFunction); ok {
				fn, self = call, v
			}
		}
	}) {
		return nil, s.abandoned(ctx)
	}
	if fn == nil {
		return nil, nil
	}
	return s.run(ctx, func(L *lua.LState) (*lua.LFunction, []lua.LValue, error) {
		lv := make([]lua.LValue, 0, len(args)+1)
		if self != nil {
			lv = append(lv, self)
		}
		for _, a := range args {
			v, err := ToLua(L, a)
			if err != nil {
				return nil, nil, err
			}
			lv = append(lv, v)
		}
		return fn, lv, nil
	}, nil)
}

// Run runs a compiled chunk that is not a module (a test file, a script)
// as a call of the state, and returns what it returns.
func (s *State) Run(ctx context.Context, proto *lua.FunctionProto) ([]any, error) {
	return s.run(ctx, func(L *lua.LState) (*lua.LFunction, []lua.LValue, error) {
		return L.NewFunctionFromProto(proto), nil, nil
	}, nil)
}

// Register makes fn callable as entry key (State.Call). Only the state's
// owner may call it: call it inside Do.
func (s *State) Register(key Entry, fn *lua.LFunction) { s.entries[key] = fn }

// AsyncFunction makes a Lua function whose work (run by parse's AsyncFunc)
// happens on another goroutine while the calling coroutine waits, like
// api.sleep. Only the state's owner may call it: call it inside Do.
func (s *State) AsyncFunction(name string, parse func(L *lua.LState) (AsyncFunc, error)) *lua.LFunction {
	return s.asyncLua(name, parse)
}
