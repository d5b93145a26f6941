package luaapi

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"weak"

	lua "github.com/yuin/gopher-lua"
)

// recorder is a Registrar that keeps what it is told.
type recorder struct {
	mu        sync.Mutex
	callbacks []CallbackRegistration
	routes    map[string]map[string]Entry
}

func (r *recorder) RegisterCallbacks(category string, cbs []CallbackRegistration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, cb := range cbs {
		if cb.Name == "unknown_callback" {
			return fmt.Errorf("unknown callback %q", cb.Name)
		}
	}
	r.callbacks = append(r.callbacks, cbs...)
	return nil
}

func (r *recorder) RegisterWebResource(path string, _ []string, entries map[string]Entry, _ string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.routes == nil {
		r.routes = map[string]map[string]Entry{}
	}
	r.routes[path] = entries
	return nil
}

type testCatalog []string

func (c testCatalog) Categories() []string { return c }

// newTestState loads src as module "test" (chunk name "test.lua") and runs
// its init. The module must return a table with init.
func newTestState(t testing.TB, src string, env *Env) (*State, *recorder) {
	t.Helper()
	return newTestStateTimeout(t, src, env, 2*time.Second)
}

// newTestStateTimeout is newTestState with the given call timeout.
func newTestStateTimeout(t testing.TB, src string, env *Env, timeout time.Duration) (*State, *recorder) {
	t.Helper()
	return newTestStateOptions(t, src, Options{Timeout: timeout, Env: env})
}

// newTestStateOptions is newTestState with the given options (module
// "test", sandboxed; a nil Env is an empty one).
func newTestStateOptions(t testing.TB, src string, opts Options) (*State, *recorder) {
	t.Helper()
	if opts.Env == nil {
		opts.Env = &Env{}
	}
	env := opts.Env
	if env.Catalog == nil {
		env.Catalog = testCatalog{"spam_checker"}
	}
	env.ServerName = "example.com"
	opts.Module, opts.Sandbox = "test", true
	s, err := NewState(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	proto, err := Compile(src, "test.lua")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Load(ctx, &Chunk{proto: proto}); err != nil {
		t.Fatal(err)
	}
	if err := s.ParseConfig(ctx, map[string]any{"greeting": "hi"}); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	if err := s.Init(ctx, rec); err != nil {
		t.Fatal(err)
	}
	return s, rec
}

// evalModule wraps statements as a module whose spam_checker callback "run"
// executes body, so tests can call it.
func evalModule(body string) string {
	return `local M = {}
function M.init(api, config)
  api.register_spam_checker_callbacks{ run = function(...) ` + body + ` end }
end
return M`
}

func callRun(t *testing.T, s *State, args ...any) ([]any, error) {
	t.Helper()
	return s.Call(context.Background(), "cb:spam_checker.run", args...)
}

func TestCallReturnsConvertedValues(t *testing.T) {
	s, rec := newTestState(t, evalModule(`local a = ... return a.x + 1, "s", {1, 2}, {k = true}, nil`), nil)
	if len(rec.callbacks) != 1 || rec.callbacks[0].Where != "test.lua:3" {
		t.Fatalf("registration = %+v", rec.callbacks)
	}
	got, err := callRun(t, s, map[string]any{"x": 41})
	if err != nil {
		t.Fatal(err)
	}
	want := `[42,"s",[1,2],{"k":true},null]`
	if b, _ := EncodeJSON(got); string(b) != want {
		t.Fatalf("got %s, want %s", b, want)
	}
}

func TestErrorsCarryFileAndLine(t *testing.T) {
	s, _ := newTestState(t, evalModule(`
  error("boom")`), nil)
	_, err := callRun(t, s)
	var se *ScriptError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v (%T)", err, err)
	}
	if se.Source != "test.lua" || se.Line != 4 || se.Message != "boom" || se.Module != "test" {
		t.Fatalf("ScriptError = %+v", se)
	}
	if got := err.Error(); got != "module test: test.lua:4: boom" {
		t.Fatalf("Error() = %q", got)
	}
}

func TestSandbox(t *testing.T) {
	for _, expr := range []string{
		"io", "os.execute", "os.exit", "os.getenv", "load", "loadstring", "dofile", "loadfile",
		"string.dump", "debug", "setfenv", "getfenv", "package", "collectgarbage", "module", "newproxy",
	} {
		t.Run(expr, func(t *testing.T) {
			s, _ := newTestState(t, evalModule(`return `+expr+` == nil`), nil)
			got, err := callRun(t, s)
			if err != nil {
				t.Fatal(err)
			}
			if got[0] != true {
				t.Fatalf("%s is reachable", expr)
			}
		})
	}
	t.Run("package.loadlib through require", func(t *testing.T) {
		s, _ := newTestState(t, evalModule(`return pcall(require, "../../etc/passwd")`), nil)
		got, err := callRun(t, s)
		if err != nil {
			t.Fatal(err)
		}
		if got[0] != false || !strings.Contains(got[1].(string), "not a module name") {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("os keeps time", func(t *testing.T) {
		s, _ := newTestState(t, evalModule(`return type(os.time()), type(os.clock()), type(os.date("%Y"))`), nil)
		got, err := callRun(t, s)
		if err != nil || fmt.Sprint(got) != "[number number string]" {
			t.Fatalf("got %v, %v", got, err)
		}
	})
	t.Run("string.rep is capped", func(t *testing.T) {
		s, _ := newTestState(t, evalModule(`return string.rep("abcdefgh", 5e7)`), nil)
		_, err := callRun(t, s)
		if err == nil || !strings.Contains(err.Error(), "over the limit") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestDeadlineStopsRunawayAndStateSurvives(t *testing.T) {
	env := &Env{Catalog: testCatalog{"spam_checker"}}
	s, err := NewState(Options{Module: "test", Sandbox: true, Timeout: 200 * time.Millisecond, Env: env})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	proto, _ := Compile(evalModule(`if ... then while true do end end return "alive"`), "test.lua")
	ctx := context.Background()
	if err := s.Load(ctx, &Chunk{proto: proto}); err != nil {
		t.Fatal(err)
	}
	_ = s.ParseConfig(ctx, nil)
	if err := s.Init(ctx, &recorder{}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Call(ctx, "cb:spam_checker.run", true)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	got, err := s.Call(ctx, "cb:spam_checker.run", false)
	if err != nil || got[0] != "alive" {
		t.Fatalf("next call: %v, %v", got, err)
	}
}

// barrierClock's Sleep returns only once n sleepers wait at once: calls
// that do not overlap never get there.
type barrierClock struct {
	RealClock
	n       int32
	arrived atomic.Int32
	release chan struct{}
}

func (c *barrierClock) Sleep(ctx context.Context, _ time.Duration) error {
	if c.arrived.Add(1) == c.n {
		close(c.release)
	}
	select {
	case <-c.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestAsyncSleepInterleavesCalls(t *testing.T) {
	const calls = 100
	clock := &barrierClock{n: calls, release: make(chan struct{})}
	s2, _ := newTestStateTimeout(t, `local M = {}
local api
function M.init(a) api = a
  a.register_spam_checker_callbacks{ run = function(n) api.sleep(0.05) return n * 2 end }
end
return M`, &Env{Clock: clock}, 10*time.Minute)
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for i := 0; i < calls; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			got, err := callRun(t, s2, i)
			if err != nil {
				errs <- err
				return
			}
			if got[0] != int64(i*2) {
				errs <- fmt.Errorf("call %d got %v", i, got)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestPcallAroundWaitingCalls(t *testing.T) {
	src := `local M = {}
local api
function M.init(a) api = a
  a.register_spam_checker_callbacks{ run = function(kind)
    if kind == "nested" then
      local ok, v = pcall(function()
        api.sleep(0.01)
        local ok2, e = pcall(error, {code = 7})
        api.sleep(0.01)
        return e.code
      end)
      return ok, v
    elseif kind == "tail" then
      return api.sleep(0.01)
    elseif kind == "tailpcall" then
      return pcall(api.sleep, 0.01)
    elseif kind == "xpcall" then
      return xpcall(function() api.sleep(0.01); error("inner") end, function(e) api.sleep(0.01); return "handled: " .. e end)
    elseif kind == "sort" then
      local t = {3, 1, 2}
      table.sort(t, function(a, b) api.sleep(0) return a < b end)
      return t
    elseif kind == "plain" then
      return pcall(error, "plain")
    end
  end }
end
return M`
	s, _ := newTestState(t, src, nil)
	for _, tc := range []struct {
		kind, want string
	}{
		{"nested", `[true,7]`},
		{"tail", `[null]`},
		{"tailpcall", `[true,null]`},
		{"xpcall", `[false,"handled: test.lua:18: inner"]`},
		{"plain", `[false,"plain"]`},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			got, err := callRun(t, s, tc.kind)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := EncodeJSON(got); string(b) != tc.want {
				t.Fatalf("got %s, want %s", b, tc.want)
			}
		})
	}
	t.Run("sort comparator cannot wait", func(t *testing.T) {
		_, err := callRun(t, s, "sort")
		if err == nil || !strings.Contains(err.Error(), "cannot wait here") {
			t.Fatalf("err = %v", err)
		}
		if got, err := callRun(t, s, "nested"); err != nil || got[0] != true {
			t.Fatalf("state unusable after misuse: %v %v", got, err)
		}
	})
}

func TestCallsAfterCloseFailCleanly(t *testing.T) {
	s, _ := newTestState(t, `local M = {}
local api
function M.init(a) api = a
  a.register_spam_checker_callbacks{ run = function() api.sleep(5) end }
end
return M`, nil)
	errs := make(chan error, 3)
	for i := 0; i < 3; i++ {
		go func() { _, err := s.Call(context.Background(), "cb:spam_checker.run"); errs <- err }()
	}
	time.Sleep(50 * time.Millisecond)
	s.Close()
	for i := 0; i < 3; i++ {
		if err := <-errs; !errors.Is(err, ErrClosed) {
			t.Errorf("waiting call after Close: %v", err)
		}
	}
	if _, err := s.Call(context.Background(), "cb:spam_checker.run"); !errors.Is(err, ErrClosed) {
		t.Errorf("call after Close: %v", err)
	}
}

// TestErrorLevels: error(msg, 2) names the caller's line, as in PUC Lua
// (gopher-lua's own error names the callee's), and so do the errors of
// waiting api functions (raised by their wrapper at level 2).
func TestErrorLevels(t *testing.T) {
	s, _ := newTestState(t, `local M = {}
local function check(x) if not x then error("x is required", 2) end end
function M.init(api)
  api.register_spam_checker_callbacks{ run = function(kind)
    if kind == "level2" then
      check(false)
    elseif kind == "async" then
      api.http_client.get_json("http://127.0.0.1:1/")
    end
    return pcall(error, "from pcall", 2)
  end }
end
return M`, nil)
	for kind, want := range map[string]string{
		"level2": "test.lua:6: x is required",
		"async":  "test.lua:8: ",
	} {
		_, err := callRun(t, s, kind)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", kind, err, want)
		}
	}
	got, err := callRun(t, s, "pcall")
	if err != nil || fmt.Sprint(got) != "[false from pcall]" {
		t.Errorf("error with a Go caller has no position: %v %v", got, err)
	}
}

// TestIdleStateKeepsNoArgument: once a call has returned, its argument is
// not kept alive by the thread the state keeps for the next call.
func TestIdleStateKeepsNoArgument(t *testing.T) {
	s, _ := newTestState(t, handlerModule, nil)
	other := lua.NewState(stateOptions)
	arg := other.NewTable()
	other.Close()
	content := other.NewTable()
	content.RawSetString("body", lua.LString("hello world"))
	arg.RawSetString("content", content)
	kept := weak.Make(arg)
	if res, err := s.Call(context.Background(), "cb:spam_checker.run", arg); err != nil || res[0] != "hello world" {
		t.Fatal(res, err)
	}
	arg, content = nil, nil
	for i := 0; i < 10 && kept.Value() != nil; i++ {
		runtime.GC()
	}
	if kept.Value() != nil {
		t.Fatal("the argument of the last call is still reachable")
	}
}
