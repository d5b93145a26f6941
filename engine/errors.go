package engine

import (
	"errors"
	"fmt"

	"luamods/luaapi"
)

// ErrUnknownCallback is returned by Invoke for a name the catalog lacks.
var ErrUnknownCallback = errors.New("engine: unknown callback")

// CallbackError is a module's callback failing in a way that reaches the
// caller: the callback, the module, and the script error with its file:line.
type CallbackError struct {
	Callback string // category.name
	Module   string
	Where    string // where the callback is defined
	Err      error  // usually *luaapi.ScriptError
	// Status is the HTTP status a host should answer with: the error
	// table's status for Synapse-style errors, 403 for on_create_room
	// refusals, 400 for missing auth fields, else 500.
	Status int
}

// Error names the callback, the module and the script error.
func (e *CallbackError) Error() string {
	return fmt.Sprintf("%s: module %s: %v", e.Callback, e.Module, unwrapModule(e.Err))
}

// Unwrap returns the script error.
func (e *CallbackError) Unwrap() error { return e.Err }

// unwrapModule drops the "module X: " prefix a ScriptError renders, since
// CallbackError names the module itself.
func unwrapModule(err error) string {
	var se *luaapi.ScriptError
	if errors.As(err, &se) {
		c := *se
		c.Module = ""
		return c.Error()
	}
	return err.Error()
}

// ErrorBody returns the Matrix error JSON a host should answer with
// ({"errcode": ..., "error": ..., extra fields}), from an error table the
// module raised ({status=, errcode=, error=, ...}); M_UNKNOWN "Internal
// server error" otherwise.
func ErrorBody(err error) (status int, body map[string]any) {
	var se *luaapi.ScriptError
	if errors.As(err, &se) {
		if status, body, ok := SynapseError(se.Value); ok {
			return status, body
		}
	}
	var ce *CallbackError
	if errors.As(err, &ce) && ce.Status == 403 {
		return 403, map[string]any{"errcode": "M_UNKNOWN", "error": "Room creation forbidden with these parameters"}
	}
	if errors.As(err, &ce) && ce.Status == 400 {
		return 400, map[string]any{"errcode": "M_MISSING_PARAM", "error": ce.Err.Error()}
	}
	return 500, map[string]any{"errcode": "M_UNKNOWN", "error": "Internal server error"}
}

// SynapseError reads an error table {status=, errcode=, error=, ...}: the
// Lua form of Synapse's SynapseError. Extra fields are kept in the body.
func SynapseError(v any) (status int, body map[string]any, ok bool) {
	m, isMap := v.(map[string]any)
	if !isMap {
		return 0, nil, false
	}
	code, hasCode := m["errcode"].(string)
	st, hasStatus := m["status"].(int64)
	if !hasCode && !hasStatus {
		return 0, nil, false
	}
	if !hasStatus || st < 400 || st > 599 {
		st = 400
	}
	if !hasCode {
		code = "M_UNKNOWN"
	}
	body = make(map[string]any, len(m))
	for k, v := range m {
		if k != "status" {
			body[k] = v
		}
	}
	body["errcode"] = code
	if _, ok := body["error"]; !ok {
		body["error"] = code
	}
	return int(st), body, true
}
