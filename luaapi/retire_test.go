package luaapi

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// goFunctionState is a state whose module calls a Go function the test
// provides, standing for Go code that ignores the deadline.
func goFunctionState(t *testing.T, fn lua.LGFunction, retired chan<- string) *State {
	t.Helper()
	env := &Env{OnRetire: func(_ *State, reason string) { retired <- reason }}
	s, _ := newTestStateTimeout(t, apiModule(`if ... then return "alive" end return go_function()`), env, 50*time.Millisecond)
	if !s.Do(context.Background(), func(L *lua.LState) { L.SetGlobal("go_function", L.NewFunction(s.guard(fn))) }) {
		t.Fatal("Do failed")
	}
	return s
}

// TestCallerLeavesAStuckState: the caller is answered although the state
// is still inside Go code past the deadline; the state is retired, its next
// calls fail at once, and OnRetire is told.
func TestCallerLeavesAStuckState(t *testing.T) {
	unblock := make(chan struct{})
	retired := make(chan string, 1)
	s := goFunctionState(t, func(L *lua.LState) int { <-unblock; return 0 }, retired)
	defer close(unblock)
	_, err := callRun(t, s)
	if err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Fatalf("err = %v, want the deadline", err)
	}
	if !s.Retired() {
		t.Fatal("a state stuck past the deadline is still in service")
	}
	if reason := <-retired; !strings.Contains(reason, "past its deadline") {
		t.Errorf("OnRetire reason = %q", reason)
	}
	if _, err := callRun(t, s, true); !errors.Is(err, ErrRetired) {
		t.Errorf("a call to the retired state: err = %v, want ErrRetired", err)
	}
	s.Close() // returns although the state's goroutine is still blocked
}

// TestRecoveredPanicRetiresTheState: a Go panic inside the VM is the
// call's error, and the state leaves service.
func TestRecoveredPanicRetiresTheState(t *testing.T) {
	retired := make(chan string, 1)
	s := goFunctionState(t, func(L *lua.LState) int { panic("boom") }, retired)
	if _, err := callRun(t, s); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("err = %v, want the panic", err)
	}
	if reason := <-retired; !strings.Contains(reason, "panic") {
		t.Errorf("OnRetire reason = %q", reason)
	}
	if _, err := callRun(t, s, true); !errors.Is(err, ErrRetired) {
		t.Errorf("err = %v, want ErrRetired", err)
	}
}

// TestPanicInASharedBuiltinRetiresItsState: a builtin shared by all states
// (stdlib.go) retires the state whose call panicked, and only that one.
func TestPanicInASharedBuiltinRetiresItsState(t *testing.T) {
	shared := guardShared(func(L *lua.LState) int {
		if L.OptBool(1, false) {
			panic("boom")
		}
		return 0
	})
	retired := make(chan string, 2)
	a := goFunctionState(t, func(L *lua.LState) int { return 0 }, retired)
	b := goFunctionState(t, func(L *lua.LState) int { return 0 }, retired)
	for _, s := range []*State{a, b} {
		if !s.Do(context.Background(), func(L *lua.LState) { L.SetGlobal("go_function", L.NewFunction(shared)) }) {
			t.Fatal("Do failed")
		}
	}
	if _, err := callRun(t, b); err != nil {
		t.Fatalf("b: %v", err)
	}
	if !a.Do(context.Background(), func(L *lua.LState) {
		if err := L.CallByParam(lua.P{Fn: L.GetGlobal("go_function"), NRet: 0, Protect: true}, lua.LTrue); err == nil || !strings.Contains(err.Error(), "boom") {
			t.Errorf("err = %v, want the panic", err)
		}
	}) {
		t.Fatal("Do failed")
	}
	if reason := <-retired; !strings.Contains(reason, "panic") {
		t.Errorf("OnRetire reason = %q", reason)
	}
	if !a.Retired() || b.Retired() {
		t.Fatalf("retired: a %v, b %v; want a only", a.Retired(), b.Retired())
	}
}
