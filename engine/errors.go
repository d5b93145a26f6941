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
	return fmt.Sprintf("%s: module %s: %v", e.Callback, e.Module, luaapi.WithoutModule(e.Err))
}

// Unwrap returns the script error.
func (e *CallbackError) Unwrap() error { return e.Err }
