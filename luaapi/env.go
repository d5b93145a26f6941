package luaapi

import (
	"context"
	"log/slog"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// Env is the world outside Lua as a module's api table sees it. The engine
// builds one per module; its states share it, and it must not change once a
// state uses it.
type Env struct {
	ServerName    string
	PublicBaseURL string
	WorkerName    string             // api.worker_name; "" is nil (the main process)
	Logger        *slog.Logger       // nil: slog.Default()
	Host          Host               // homeserver-backed methods; nil: "no homeserver attached"
	HTTP          *HTTPClient        // api.http_client; nil: every request fails
	Clock         Clock              // nil: the real clock
	Catalog       Catalog            // the callback categories api.register_*_callbacks offers
	Caches        CacheProvider      // api.cached; nil: api.cached fails
	Metrics       MetricsProvider    // api.metrics; nil: defining a metric fails
	MaxStringSize int                // cap of a string a builtin builds; 0: DefaultMaxStringSize
	MaxCallMemory int64              // allocation budget of one call's builtins; 0: DefaultMaxCallMemory
	MaxJSONNodes  int                // budget of request.json in values and keys (max_request_json_nodes); 0: DefaultMaxJSONNodes
	Background    BackgroundObserver // metrics of background work by description; nil: none
	Database      Database           // api.run_db_interaction; nil: it fails
	Store         Store              // api.store, in the module's namespace; nil: it fails

	EmailAppName string // api.email_app_name; "": ServerName
	// Expose are Go values every module sees as host.<name>, through
	// gopher-luar (expose.go); their methods run synchronously.
	Expose map[string]any

	// Depend records a file the module read besides its scripts (a
	// template), with its ContentHash, so that a change to it reloads the
	// module; nil records nothing.
	Depend func(path, hash string)

	// OnRetire is told, on a goroutine of its own, when a state is taken
	// out of service (State.Retired), so that it can be replaced.
	OnRetire func(s *State, reason string)

	// OnTimerRefused is told when a state refuses a timer at max_timers
	// (a metric); nil: nothing.
	OnTimerRefused func()

	// Compile compiles files for require; nil compiles them every time.
	Compile func(path string) (*lua.FunctionProto, error)
}

func (e *Env) logger() *slog.Logger {
	if e.Logger != nil {
		return e.Logger
	}
	return slog.Default()
}

func (e *Env) clock() Clock {
	if e.Clock != nil {
		return e.Clock
	}
	return RealClock{}
}

func (e *Env) compile(path string) (*lua.FunctionProto, error) {
	if e.Compile != nil {
		return e.Compile(path)
	}
	return CompileFile(path)
}

// Clock is the time source of api.sleep, the background calls and
// api.get_current_time_msec. Tests substitute a virtual clock; call
// deadlines then expire in its time as well as in wall time.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine after d; stop cancels it.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// AfterFunc is time.AfterFunc.
func (RealClock) AfterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }

// Catalog tells the api table which callback categories exist.
type Catalog interface {
	// Categories lists the categories, each offered as
	// api.register_<category>_callbacks.
	Categories() []string
}

// CallbackRegistration is one callback a module registered.
type CallbackRegistration struct {
	Category string
	Name     string
	Key      string   // for keyed callbacks (auth_checkers): the key, such as a login type
	Fields   []string // for keyed callbacks: the declared fields
	Entry    Entry    // what to pass to State.Call to run it
	Where    string   // "file:line" where the function is defined
}

// Registrar receives what a module registers during init. Its errors are
// raised in Lua at the registering line, so they reach the operator with the
// module's file and line.
type Registrar interface {
	RegisterCallbacks(category string, callbacks []CallbackRegistration) error
	RegisterWebResource(path string, methods []string, entries map[string]Entry, where string) error
}

// Host is the homeserver behind the homeserver-backed api methods
// (api.get_room_state, api.account_data_manager.get_global, …). method is
// the api name ("get_room_state", "account_data_manager.put_global"); args and
// the result are JSON-like values. Calls run on a goroutine of their own, so a
// Host may block until ctx is done.
type Host interface {
	CallHost(ctx context.Context, method string, args []any) (any, error)
}
