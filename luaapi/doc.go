// Package luaapi is everything a module's Lua state sees: the sandbox, the
// api table of design §2, conversion of values between Go and Lua, and the
// scheduler that lets one state serve many calls waiting on I/O.
//
// A State is one Lua state of a module. Every call into it runs as a
// coroutine (a gopher-lua thread). Asynchronous api functions (api.sleep,
// api.http_client.*, homeserver methods, waiting on a cached computation)
// start their work on a goroutine of its own and yield; the state goes on
// with other calls and resumes the coroutine when the result arrives.
// pcall and xpcall are requests to that scheduler, so they work around
// waiting calls. Every call has a deadline, enforced by the VM between
// instructions and by a per-state watchdog.
//
// The life of a state, in order: NewState (sandbox and api table), Load
// (run the compiled chunk: it returns the module table), ParseConfig (the
// module's parse_config, if any), Init (the module's init: the only time
// registration is allowed, reported to the Registrar), then any number of
// Call/Invoke, and Close.
//
// luaapi imports no other luamods package. It declares what it needs from
// its host as small interfaces (Registrar, Host, CacheProvider, Catalog,
// Clock) that the engine implements.
package luaapi
