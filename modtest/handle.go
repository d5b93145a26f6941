package modtest

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"path/filepath"

	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	lua "github.com/yuin/gopher-lua"

	"luamods/engine"
	"luamods/httpbridge"
	"luamods/internal/logbuf"
	"luamods/luaapi"
	"luamods/storage"
)

// handle is a module (or a whole configuration) loaded by a test, with its
// fakes.
type handle struct {
	eng   *engine.Engine
	web   *echo.Echo // the route table, served without a socket
	host  *fakeHost
	http  *fakeHTTP
	clock *VirtualClock
	logs  *logbuf.Buffer
}

func (h *handle) close() {
	h.eng.Close()
}

// start loads the configuration opts name with fakes in place of the
// homeserver, the network and the clock.
func start(ctx context.Context, opts engine.Options) (*handle, error) {
	h := &handle{
		host:  &fakeHost{},
		http:  &fakeHTTP{},
		clock: NewVirtualClock(),
		logs:  &logbuf.Buffer{},
	}
	opts.Host = h.host
	opts.HTTPClient = luaapi.NewHTTPClient(luaapi.HTTPPolicy{Transport: h.http})
	opts.Clock = h.clock
	opts.Logger = slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.Registry = prometheus.NewRegistry()
	eng, err := engine.New(ctx, opts)
	if err != nil {
		return nil, err
	}
	h.eng = eng
	h.web = echo.New()
	httpbridge.New(eng).Mount(h.web)
	return h, nil
}

// parseLoad is luamods.load(path [, config [, options]]): one module, its
// path relative to the test file. The options are loadOptions; database is
// an SQLite file (relative to the test file), by default the file's fresh one.
func (fr *fileRun) parseLoad(L *lua.LState) (luaapi.AsyncFunc, error) {
	path := fr.resolve(L.CheckString(1))
	config, err := luaapi.FromLua(L.Get(2))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if config == nil {
		config = map[string]any{}
	}
	opts, err := readOptions(L, 3, "luamods.load", moduleOptions())
	if err != nil {
		return nil, err
	}
	cfg := &engine.Config{ServerName: DefaultServerName}
	mc := engine.ModuleConfig{Module: path, Config: config}
	applyServer(cfg, opts)
	if _, ok := opts["public_baseurl"]; !ok {
		cfg.PublicBaseURL = "https://" + cfg.ServerName + "/"
	}
	if err := applyModule(&mc, opts); err != nil {
		return nil, err
	}
	if v, ok := opts["database"]; ok {
		cfg.Database = storage.Options{Engine: storage.SQLite, Path: fr.resolve(lua.LVAsString(v))}
	}
	cfg.Modules = []engine.ModuleConfig{mc}
	return func(ctx context.Context) (func(*lua.LState) []lua.LValue, error) {
		h, err := start(ctx, engine.Options{Config: cfg, DefaultDatabase: fr.database})
		if err != nil {
			return nil, err
		}
		fr.track(h)
		return func(L *lua.LState) []lua.LValue { return []lua.LValue{fr.handleTable(L, h)} }, nil
	}, nil
}

// parseLoadConfig is luamods.load_config(path [, options]): a whole
// configuration file; server_name, public_baseurl and worker_name override
// the file's.
func (fr *fileRun) parseLoadConfig(L *lua.LState) (luaapi.AsyncFunc, error) {
	path := fr.resolve(L.CheckString(1))
	opts, err := readOptions(L, 2, "luamods.load_config", serverOptions)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (func(*lua.LState) []lua.LValue, error) {
		cfg, err := engine.LoadConfig(path)
		if err != nil {
			return nil, err
		}
		applyServer(cfg, opts)
		h, err := start(ctx, engine.Options{Config: cfg, DefaultDatabase: fr.database})
		if err != nil {
			return nil, err
		}
		fr.track(h)
		return func(L *lua.LState) []lua.LValue { return []lua.LValue{fr.handleTable(L, h)} }, nil
	}, nil
}

// resolve makes a path given by a test file absolute, relative to the file.
func (fr *fileRun) resolve(p string) string {
	if !filepath.IsAbs(p) {
		p = filepath.Join(filepath.Dir(fr.path), p)
	}
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

// handleTable builds the Lua object of a loaded module. Owner goroutine.
func (fr *fileRun) handleTable(L *lua.LState, h *handle) *lua.LTable {
	s := fr.state
	m := L.CreateTable(0, 8)
	m.RawSetString("invoke", s.AsyncFunction("invoke", func(L *lua.LState) (luaapi.AsyncFunc, error) {
		name := L.CheckString(2)
		args, err := argsFrom(L, 3)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) (func(*lua.LState) []lua.LValue, error) {
			var res any
			err := h.await(ctx, func(ctx context.Context) (err error) {
				res, err = h.eng.Invoke(ctx, name, args...)
				return err
			})
			if err != nil {
				return nil, err
			}
			return func(L *lua.LState) []lua.LValue { return luaapi.ValuesToLua(L, res) }, nil
		}, nil
	}))
	m.RawSetString("call", s.AsyncFunction("call", func(L *lua.LState) (luaapi.AsyncFunc, error) {
		name := L.CheckString(2)
		args, err := argsFrom(L, 3)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) (func(*lua.LState) []lua.LValue, error) {
			gen, release := h.eng.Acquire()
			defer release()
			if len(gen.Modules) == 0 {
				return nil, fmt.Errorf("no module loaded")
			}
			var res []any
			err := h.await(ctx, func(ctx context.Context) (err error) {
				res, err = gen.Modules[0].State().CallFunction(ctx, name, args...)
				return err
			})
			if err != nil {
				return nil, err
			}
			return func(L *lua.LState) []lua.LValue { return luaapi.ValuesToLua(L, luaapi.Tuple(res)) }, nil
		}, nil
	}))
	m.RawSetString("request", s.AsyncFunction("request", func(L *lua.LState) (luaapi.AsyncFunc, error) {
		return h.parseRequest(L)
	}))
	m.RawSetString("logs", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString(h.logs.String()))
		return 1
	}))
	m.RawSetString("host", fr.hostTable(L, h))
	m.RawSetString("http", fr.httpTable(L, h))
	m.RawSetString("clock", fr.clockTable(L, h))
	return m
}

func argsFrom(L *lua.LState, from int) ([]any, error) {
	var args []any
	for i := from; i <= L.GetTop(); i++ {
		v, err := luaapi.FromLua(L.Get(i))
		if err != nil {
			return nil, fmt.Errorf("argument %d: %w", i-from+1, err)
		}
		args = append(args, v)
	}
	return args, nil
}

// parseRequest is m:request(method, path [, {headers=, body=, json=}]):
// through the module's routes, as luamods serve would answer.
func (h *handle) parseRequest(L *lua.LState) (luaapi.AsyncFunc, error) {
	method := strings.ToUpper(L.CheckString(2))
	path := L.CheckString(3)
	body := ""
	headers := map[string]string{}
	if opts, ok := L.Get(4).(*lua.LTable); ok {
		if b, ok := opts.RawGetString("body").(lua.LString); ok {
			body = string(b)
		}
		if j := opts.RawGetString("json"); j != lua.LNil {
			v, err := luaapi.FromLua(j)
			if err != nil {
				return nil, fmt.Errorf("json: %w", err)
			}
			b, err := luaapi.EncodeJSON(v)
			if err != nil {
				return nil, err
			}
			body = string(b)
			headers["Content-Type"] = "application/json"
		}
		if hs, ok := opts.RawGetString("headers").(*lua.LTable); ok {
			hs.ForEach(func(k, v lua.LValue) { headers[k.String()] = v.String() })
		}
	}
	return func(ctx context.Context) (func(*lua.LState) []lua.LValue, error) {
		req := httptest.NewRequest(method, path, strings.NewReader(body)).WithContext(ctx)
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		_ = h.await(ctx, func(ctx context.Context) error {
			h.web.ServeHTTP(rec, req.WithContext(ctx))
			return nil
		})
		return func(L *lua.LState) []lua.LValue {
			t := L.CreateTable(0, 4)
			t.RawSetString("status", lua.LNumber(rec.Code))
			t.RawSetString("body", lua.LString(rec.Body.String()))
			hs := L.CreateTable(0, len(rec.Header()))
			for k := range rec.Header() {
				hs.RawSetString(strings.ToLower(k), lua.LString(rec.Header().Get(k)))
			}
			t.RawSetString("headers", hs)
			if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
				if v, err := luaapi.DecodeJSON(rec.Body.Bytes()); err == nil {
					if lv, err := luaapi.ToLua(L, v); err == nil {
						t.RawSetString("json", lv)
					}
				}
			}
			return []lua.LValue{t}
		}, nil
	}, nil
}

// clockTable is m.clock: advance(seconds) fires the background calls that
// fall due and waits for the module to run them; now() is in milliseconds.
func (fr *fileRun) clockTable(L *lua.LState, h *handle) *lua.LTable {
	t := L.CreateTable(0, 2)
	t.RawSetString("advance", fr.state.AsyncFunction("clock:advance", func(L *lua.LState) (luaapi.AsyncFunc, error) {
		d := time.Duration(float64(L.CheckNumber(2)) * float64(time.Second))
		return func(ctx context.Context) (func(*lua.LState) []lua.LValue, error) {
			return nil, h.advance(ctx, d)
		}, nil
	}))
	t.RawSetString("now", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LNumber(h.clock.Now().UnixMilli()))
		return 1
	}))
	return t
}

// toLuaOrNil converts recorded calls and requests (structs) through JSON.
func toLuaOrNil(L *lua.LState, v any) lua.LValue {
	b, err := luaapi.EncodeJSON(v)
	if err != nil {
		return lua.LNil
	}
	g, err := luaapi.DecodeJSON(b)
	if err != nil {
		return lua.LNil
	}
	if g == nil {
		g = []any{}
	}
	lv, err := luaapi.ToLua(L, g)
	if err != nil {
		return lua.LNil
	}
	return lv
}
