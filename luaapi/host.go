package luaapi

import (
	"context"
	"errors"

	lua "github.com/yuin/gopher-lua"
)

// ErrNoHost is the cause of a homeserver-backed method called when no Host is attached.
var ErrNoHost = errors.New("no homeserver attached")

// HostMethods are the homeserver-backed api methods, each forwarded to
// Host.CallHost under its name. They take and return JSON-like values; a
// Tuple result becomes several Lua values.
var HostMethods = []string{
	"get_room_state", "get_state_events_in_room", "check_user_exists", "check_username",
	"get_userinfo_by_id", "is_user_admin", "set_user_admin", "get_profile_for_user",
	"set_displayname", "get_threepids_for_user", "get_user_ip_and_agents",
	"register_user", "create_login_token", "invalidate_access_token",
	"record_user_external_id", "update_room_membership", "create_and_send_event_into_room",
	"create_room", "delete_room", "lookup_room_alias", "get_canonical_room_alias",
	"send_local_online_presence_to", "set_presence_for_users", "send_mail",
	"send_http_push_notification", "check_push_rule_actions", "set_push_rule_action",
	"get_monthly_active_users_by_service",
}

// HostManagers are api tables of homeserver-backed methods, forwarded as
// "<manager>.<method>".
var HostManagers = []struct {
	Name    string
	Methods []string
}{
	{"account_data_manager", []string{"get_global", "put_global"}},
	{"public_room_list_manager", []string{"room_is_in_public_room_list", "add_room_to_public_room_list", "remove_room_from_public_room_list"}},
}

// hostManager makes the api table of one homeserver-backed manager.
func (s *State) hostManager(name string, methods []string) *lua.LTable {
	t := s.L.CreateTable(0, len(methods))
	for _, m := range methods {
		t.RawSetString(m, s.hostMethod(name+"."+m))
	}
	return t
}

// hostMethod makes the async Lua function for one homeserver method.
func (s *State) hostMethod(method string) *lua.LFunction {
	return s.asyncLua(method, func(L *lua.LState) (AsyncFunc, error) {
		host := s.opts.Env.Host
		if host == nil {
			return nil, ErrNoHost
		}
		args := make([]any, L.GetTop())
		for i := range args {
			v, err := FromLua(L.Get(i + 1))
			if err != nil {
				return nil, err
			}
			args[i] = v
		}
		return func(ctx context.Context) (func(*lua.LState) []lua.LValue, error) {
			res, err := host.CallHost(ctx, method, args)
			if err != nil {
				return nil, err
			}
			return func(L *lua.LState) []lua.LValue { return ValuesToLua(L, res) }, nil
		}, nil
	})
}

// ValuesToLua converts a result into Lua values; a Tuple gives several. A
// value that cannot be converted becomes nil: results are JSON-like by
// contract (a Host's, an engine's).
func ValuesToLua(L *lua.LState, v any) []lua.LValue {
	if t, ok := v.(Tuple); ok {
		out := make([]lua.LValue, len(t))
		for i, e := range t {
			out[i], _ = ToLua(L, e)
		}
		return out
	}
	lv, _ := ToLua(L, v)
	return []lua.LValue{lv}
}
