package luaapi

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// ErrClosed is returned by calls into a state that has been closed.
var ErrClosed = errors.New("luaapi: module state closed")

// ErrRetired is returned by calls into a state taken out of service (stuck
// past a deadline, or after a recovered Go panic) until it is replaced.
var ErrRetired = errors.New("luaapi: module state retired")

// ScriptError is an error raised by Lua code, located at its file and line.
type ScriptError struct {
	Module    string // module name from the configuration
	Source    string // chunk name: the script's path
	Line      int    // 0 when unknown
	Message   string // the message without the "file:line:" prefix
	Value     any    // the error value as a Go value when it was a table (error{...}), else nil
	Traceback string
	cause     error
}

// Error is "module M: file:line: message".
func (e *ScriptError) Error() string {
	var b strings.Builder
	if e.Module != "" {
		fmt.Fprintf(&b, "module %s: ", e.Module)
	}
	if e.Source != "" {
		b.WriteString(e.Source)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// Where returns "file:line" (or just the file, or "").
func (e *ScriptError) Where() string {
	if e.Line > 0 {
		return e.Source + ":" + strconv.Itoa(e.Line)
	}
	return e.Source
}

// Unwrap returns the underlying cause, such as context.DeadlineExceeded.
func (e *ScriptError) Unwrap() error { return e.cause }

var positionPrefix = regexp.MustCompile(`(?s)^([^\n:]+):(\d+): (.*)$`)

// newScriptError builds a ScriptError from a Lua error value. tb is the
// traceback, when known.
func newScriptError(module string, v lua.LValue, tb string) *ScriptError {
	e := &ScriptError{Module: module, Traceback: tb}
	switch x := v.(type) {
	case lua.LString:
		e.Message = string(x)
	case *lua.LTable:
		if gv, err := FromLua(x); err == nil {
			e.Value = gv
		}
		e.Message = describeErrorTable(x)
	default:
		e.Message = v.String()
	}
	if m := positionPrefix.FindStringSubmatch(e.Message); m != nil {
		e.Source = m[1]
		e.Line, _ = strconv.Atoi(m[2])
		e.Message = m[3]
	}
	e.Message = clipText(strings.TrimPrefix(e.Message, " "), maxLogText) // gopher-lua's level-0 errors start with a space
	if e.Source == "" {
		e.Source, e.Line = firstLuaFrame(tb)
	}
	switch {
	case strings.HasSuffix(e.Message, context.DeadlineExceeded.Error()):
		e.cause = context.DeadlineExceeded
	case strings.HasSuffix(e.Message, context.Canceled.Error()):
		e.cause = context.Canceled
	}
	return e
}

var tracebackFrame = regexp.MustCompile(`(?m)^\s+([^\s\[=][^:\n]*):(\d+):`)

// firstLuaFrame finds where an error without a position (an error table)
// was raised: the innermost Lua frame of the traceback.
func firstLuaFrame(tb string) (string, int) {
	m := tracebackFrame.FindStringSubmatch(tb)
	if m == nil {
		return "", 0
	}
	line, _ := strconv.Atoi(m[2])
	return m[1], line
}

// describeErrorTable renders an error table ({errcode=, error=} or
// {code=, msg=}) as a one-line message.
func describeErrorTable(t *lua.LTable) string {
	var parts []string
	for _, k := range []string{"status", "code", "errcode", "error", "msg"} {
		if v := t.RawGetString(k); v != lua.LNil {
			parts = append(parts, k+"="+v.String())
		}
	}
	if len(parts) == 0 {
		return "error table"
	}
	return "error {" + strings.Join(parts, ", ") + "}"
}

// LuaError is a Go error that knows its Lua form: async api functions return
// one to raise a structured error (such as an HTTP error table) in Lua.
type LuaError interface {
	error
	LuaValue(L *lua.LState) lua.LValue
}

func errorToLua(L *lua.LState, err error) lua.LValue {
	var le LuaError
	if errors.As(err, &le) {
		return le.LuaValue(L)
	}
	return lua.LString(err.Error())
}

// WithoutModule renders err without the "module <name>: " prefix of the
// ScriptError in its chain, for messages that name the module already;
// what wraps the ScriptError is kept.
func WithoutModule(err error) string {
	se := (*ScriptError)(nil)
	if !errors.As(err, &se) || se.Module == "" {
		return err.Error()
	}
	c := *se
	c.Module = ""
	return strings.Replace(err.Error(), se.Error(), c.Error(), 1)
}

// NewValueError returns an error raised in Lua as v, a JSON-like value
// (a string, or a table such as {errcode = "M_FORBIDDEN", error = "..."}).
// Fakes and hosts use it to fail a call with a structured error.
func NewValueError(v any) error {
	msg, ok := v.(string)
	if !ok {
		b, err := EncodeJSON(v)
		if err != nil {
			return fmt.Errorf("%v", v)
		}
		msg = string(b)
	}
	return &valueError{value: v, msg: msg}
}
