package luaapi

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// NotSpam is api.NOT_SPAM, the spam checker's "allow" answer.
const NotSpam = "NOT_SPAM"

// PresenceAllUsers is api.PRESENCE_ALL_USERS, the presence router's "everyone".
const PresenceAllUsers = "ALL"

// Tuple is a Go value that crosses into Lua as several values (multiple
// returns), as a Python tuple result does in Synapse.
type Tuple []any

// registryAPI is the registry key of the state's api table.
const registryAPI = "luamods.api"

// installAPI builds the api table (design §2) in a fixed order. Its
// tables of functions and the homeserver methods are built on first read
// (lazyapi.go).
func (s *State) installAPI() {
	L := s.L
	env := s.opts.Env
	api := L.CreateTable(0, 32)
	api.RawSetString("server_name", lua.LString(env.ServerName))
	api.RawSetString("public_baseurl", lua.LString(env.PublicBaseURL))
	if env.WorkerName != "" {
		api.RawSetString("worker_name", lua.LString(env.WorkerName))
	}
	s.installMatrixFields(api)
	api.RawSetString("NOT_SPAM", lua.LString(NotSpam))
	api.RawSetString("PRESENCE_ALL_USERS", lua.LString(PresenceAllUsers))

	for _, f := range []struct {
		name string
		fn   lua.LGFunction
	}{
		{"get_current_time_msec", s.apiTimeMsec},
		{"get_qualified_user_id", s.apiQualifiedUserID},
		{"is_mine", s.apiIsMine},
		{"should_run_background_tasks", func(L *lua.LState) int { L.Push(lua.LTrue); return 1 }},
		{"looping_background_call", s.apiLoopingCall},
		{"run_as_background_process", s.apiRunAsBackgroundProcess},
		{"delayed_background_call", s.apiDelayedCall},
		{"register_web_resource", s.apiRegisterWebResource},
		{"cached", s.apiCached},
		{"register_cached_function", s.apiRegisterCachedFunction},
		{"read_templates", s.apiReadTemplates},
	} {
		api.RawSetString(f.name, L.NewFunction(f.fn))
	}
	api.RawSetString("sleep", s.asyncLua("sleep", s.parseSleep))
	api.RawSetString("invalidate_cache", s.asyncLua("invalidate_cache", s.parseInvalidateCache))
	if env.Catalog != nil {
		for _, category := range env.Catalog.Categories() {
			api.RawSetString("register_"+category+"_callbacks", L.NewFunction(s.registerCallbacks(category)))
		}
	}
	s.makeLazy(api) // the tables of functions and the homeserver methods: lazyapi.go
	L.SetField(L.Get(lua.RegistryIndex), registryAPI, api)
}

// API returns the api table. Only the state's owner may call it (inside Do).
func (s *State) API() *lua.LTable {
	return s.L.GetField(s.L.Get(lua.RegistryIndex), registryAPI).(*lua.LTable)
}

// errcodes are the Matrix errcodes of api.errors (Synapse's Codes).
var errcodes = []string{
	"M_UNRECOGNIZED", "M_UNAUTHORIZED", "M_FORBIDDEN", "M_BAD_JSON", "M_NOT_JSON",
	"M_USER_IN_USE", "M_ROOM_IN_USE", "M_BAD_PAGINATION", "M_BAD_STATE", "M_UNKNOWN",
	"M_NOT_FOUND", "M_MISSING_TOKEN", "M_UNKNOWN_TOKEN", "M_GUEST_ACCESS_FORBIDDEN",
	"M_LIMIT_EXCEEDED", "M_CAPTCHA_NEEDED", "M_CAPTCHA_INVALID", "M_MISSING_PARAM",
	"M_INVALID_PARAM", "M_TOO_LARGE", "M_EXCLUSIVE", "M_THREEPID_AUTH_FAILED",
	"M_THREEPID_IN_USE", "M_THREEPID_NOT_FOUND", "M_THREEPID_DENIED", "M_INVALID_USERNAME",
	"M_SERVER_NOT_TRUSTED", "M_CONSENT_NOT_GIVEN", "M_CANNOT_LEAVE_SERVER_NOTICE_ROOM",
	"M_RESOURCE_LIMIT_EXCEEDED", "M_UNSUPPORTED_ROOM_VERSION", "M_INCOMPATIBLE_ROOM_VERSION",
	"M_WRONG_ROOM_KEYS_VERSION", "M_EXPIRED_ACCOUNT", "M_PASSWORD_TOO_SHORT",
	"M_PASSWORD_NO_DIGIT", "M_PASSWORD_NO_UPPERCASE", "M_PASSWORD_NO_LOWERCASE",
	"M_PASSWORD_NO_SYMBOL", "M_WEAK_PASSWORD", "M_INVALID_SIGNATURE", "M_USER_DEACTIVATED",
	"M_BAD_ALIAS", "M_DUPLICATE_ANNOTATION", "M_USER_AWAITING_APPROVAL", "M_USER_LOCKED",
	"M_USER_SUSPENDED", "M_UNKNOWN_POS", "M_THREEPID_MEDIUM_NOT_SUPPORTED",
	"M_INVALID_ROOM_STATE", "M_MISSING_USER", "M_UNREDACTED_CONTENT_DELETED",
}

// errcodeAliases are Codes members whose value is not "M_" + their name.
var errcodeAliases = map[string]string{
	"EXPIRED_ACCOUNT": "ORG_MATRIX_EXPIRED_ACCOUNT",
	"BAD_ALIAS":       "M_BAD_ALIAS",
}

func (s *State) errcodeTable() *lua.LTable {
	t := s.L.CreateTable(0, len(errcodes)+1)
	for _, code := range errcodes {
		t.RawSetString(strings.TrimPrefix(code, "M_"), lua.LString(code))
	}
	for name, code := range errcodeAliases {
		t.RawSetString(name, lua.LString(code))
	}
	return t
}

func (s *State) apiTimeMsec(L *lua.LState) int {
	L.Push(lua.LNumber(s.opts.Env.clock().Now().UnixMilli()))
	return 1
}

// apiQualifiedUserID is api.get_qualified_user_id(localpart): "@localpart:server"
// unless the argument already starts with "@".
func (s *State) apiQualifiedUserID(L *lua.LState) int {
	name := L.CheckString(1)
	if strings.HasPrefix(name, "@") {
		L.Push(lua.LString(name))
		return 1
	}
	L.Push(lua.LString("@" + name + ":" + s.opts.Env.ServerName))
	return 1
}

// apiIsMine is api.is_mine(id): whether a Matrix ID's server part is ours.
func (s *State) apiIsMine(L *lua.LState) int {
	id := L.CheckString(1)
	_, server, ok := strings.Cut(id, ":")
	L.Push(lua.LBool(ok && server == s.opts.Env.ServerName))
	return 1
}

func (s *State) parseSleep(L *lua.LState) (AsyncFunc, error) {
	d := floatDuration(float64(L.CheckNumber(1)), time.Second)
	c := s.current
	return func(ctx context.Context) (func(*lua.LState) []lua.LValue, error) {
		return nil, s.sleepOn(ctx, c, d)
	}, nil
}

// requireInit raises an error unless the module is in its init function.
func (s *State) requireInit(L *lua.LState, what string) {
	if s.phase != phaseInit {
		L.RaiseError("%s: registration is only allowed in the module's init function", what)
	}
	if s.reg == nil {
		L.RaiseError("%s: nothing to register with", what)
	}
}

// registerCallbacks is api.register_<category>_callbacks{name = function, ...}.
// A keyed callback (auth_checkers) is a table of key → function or
// key → {fields = {...}, check = function}.
func (s *State) registerCallbacks(category string) lua.LGFunction {
	what := "register_" + category + "_callbacks"
	return func(L *lua.LState) int {
		s.requireInit(L, what)
		tbl := L.CheckTable(1)
		names, err := stringKeys(tbl)
		if err != nil {
			L.RaiseError("%s: %v", what, err)
		}
		var regs []CallbackRegistration
		entries := map[Entry]*lua.LFunction{}
		for _, name := range names {
			switch v := tbl.RawGetString(name).(type) {
			case *lua.LFunction:
				entry := "cb:" + category + "." + name
				regs = append(regs, CallbackRegistration{Category: category, Name: name, Entry: entry, Where: definedAt(v)})
				entries[entry] = v
			case *lua.LTable:
				keyed, err := keyedCallbacks(category, name, v, entries)
				if err != nil {
					L.RaiseError("%s: %s: %v", what, name, err)
				}
				regs = append(regs, keyed...)
			default:
				L.RaiseError("%s: callback %s must be a function, not a %s", what, name, v.Type())
			}
		}
		if err := s.reg.RegisterCallbacks(category, regs); err != nil {
			L.RaiseError("%s: %v", what, err)
		}
		for k, fn := range entries {
			s.entries[k] = fn
		}
		return 0
	}
}

func keyedCallbacks(category, name string, tbl *lua.LTable, entries map[Entry]*lua.LFunction) ([]CallbackRegistration, error) {
	keys, err := stringKeys(tbl)
	if err != nil {
		return nil, err
	}
	var regs []CallbackRegistration
	for _, key := range keys {
		reg := CallbackRegistration{Category: category, Name: name, Key: key, Entry: "cb:" + category + "." + name + "/" + key}
		var fn *lua.LFunction
		switch v := tbl.RawGetString(key).(type) {
		case *lua.LFunction:
			fn = v
		case *lua.LTable:
			check, ok := v.RawGetString("check").(*lua.LFunction)
			if !ok {
				return nil, fmt.Errorf("%q: check must be a function", key)
			}
			fn = check
			if fields, ok := v.RawGetString("fields").(*lua.LTable); ok {
				var bad error
				fields.ForEach(func(_, f lua.LValue) {
					if fs, ok := f.(lua.LString); ok {
						reg.Fields = append(reg.Fields, string(fs))
					} else {
						bad = fmt.Errorf("%q: field names must be strings, not a %s", key, f.Type())
					}
				})
				if bad != nil {
					return nil, bad
				}
			}
		default:
			return nil, fmt.Errorf("%q: must be a function or {fields = {...}, check = function}", key)
		}
		reg.Where = definedAt(fn)
		entries[reg.Entry] = fn
		regs = append(regs, reg)
	}
	return regs, nil
}

// stringKeys returns a table's keys in order, refusing non-string keys.
func stringKeys(t *lua.LTable) ([]string, error) {
	var keys []string
	var err error
	t.ForEach(func(k, _ lua.LValue) {
		if ks, ok := k.(lua.LString); ok {
			keys = append(keys, string(ks))
		} else if err == nil {
			err = fmt.Errorf("keys must be callback names (strings), not a %s", k.Type())
		}
	})
	sort.Strings(keys)
	return keys, err
}

// definedAt returns "file:line" of a Lua function's definition.
func definedAt(fn *lua.LFunction) string {
	if fn.Proto == nil {
		return "[Go]"
	}
	return fmt.Sprintf("%s:%d", fn.Proto.SourceName, fn.Proto.LineDefined)
}

// apiRegisterWebResource is api.register_web_resource(path, handler), where
// handler is function(request) or a table of method → function.
func (s *State) apiRegisterWebResource(L *lua.LState) int {
	const what = "register_web_resource"
	s.requireInit(L, what)
	path := L.CheckString(1)
	entries := map[string]Entry{}
	fns := map[Entry]*lua.LFunction{}
	var methods []string
	where := trimWhere(L.Where(1))
	switch h := L.Get(2).(type) {
	case *lua.LFunction:
		entries["*"] = "route:" + path
		fns["route:"+path] = h
		where = definedAt(h)
	case *lua.LTable:
		keys, err := stringKeys(h)
		if err != nil || len(keys) == 0 {
			L.RaiseError("%s: %q: the handler table must map HTTP methods (GET, POST, ...) to functions", what, path)
		}
		for _, m := range keys {
			fn, ok := h.RawGetString(m).(*lua.LFunction)
			if !ok {
				L.RaiseError("%s: %q: handler for %s must be a function", what, path, m)
			}
			method := strings.ToUpper(m)
			entry := "route:" + path + "#" + method
			entries[method] = entry
			fns[entry] = fn
			methods = append(methods, method)
		}
	default:
		L.RaiseError("%s: %q: handler must be a function or a table of method → function, not a %s", what, path, L.Get(2).Type())
	}
	if err := s.reg.RegisterWebResource(path, methods, entries, where); err != nil {
		L.RaiseError("%s: %v", what, err)
	}
	for k, fn := range fns {
		s.entries[k] = fn
	}
	return 0
}
