package matrixhost

import (
	"context"
	"errors"
	"strings"
	"testing"

	"luamods/luaapi"
)

func testHost(t *testing.T) *Host {
	t.Helper()
	h, err := New(Options{URL: "http://127.0.0.1:1", ServerName: "example.com", ASToken: "as"})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestEveryHostMethod: each api method of luaapi has an implementation.
func TestEveryHostMethod(t *testing.T) {
	h := testHost(t)
	want := append([]string{"get_user_by_req"}, luaapi.HostMethods...)
	for _, mgr := range luaapi.HostManagers {
		for _, m := range mgr.Methods {
			want = append(want, mgr.Name+"."+m)
		}
	}
	for _, name := range want {
		if h.methods[name] == nil {
			t.Errorf("%s has no implementation", name)
		}
	}
	if len(h.methods) != len(want) {
		t.Errorf("%d implementations for %d methods", len(h.methods), len(want))
	}
}

func TestUnsupportedAndMisusedMethods(t *testing.T) {
	h := testHost(t)
	ctx := context.Background()
	cases := []struct {
		method string
		args   []any
		want   string
	}{
		{"send_mail", []any{"a@b", "s", "<p>", "t"}, "not available through the homeserver's HTTP APIs: the homeserver's SMTP sender"},
		{"send_http_push_notification", []any{"@a:example.com", nil, map[string]any{}}, "pushers"},
		{"send_local_online_presence_to", []any{[]any{"@a:example.com"}}, "presence"},
		{"get_monthly_active_users_by_service", nil, "monthly active users"},
		{"is_user_admin", []any{"@a:example.com"}, "needs Synapse's admin API (GET /_synapse/admin/v1/users/@a:example.com/admin) and no admin token is configured (set homeserver.admin_token_path"},
		{"delete_room", []any{"!r:example.com"}, "DELETE /_synapse/admin/v2/rooms/%21r:example.com"},
		{"register_user", []any{"bob", nil, nil, true}, "admin and emails: needs Synapse's admin API"},
		{"get_room_state", []any{5}, "argument 1 (room_id) must be a non-empty string"},
		{"get_room_state", []any{"!r:example.com", []any{[]any{5}}}, "filter item 1 must be a {type, state_key} pair"},
		{"update_room_membership", []any{"@a:other.org", "@a:other.org", "!r:x", "join"}, "sender must be a user of this server (example.com)"},
		{"update_room_membership", []any{"@a:example.com", "@b:example.com", "!r:x", "join"}, `cannot make @b:example.com's membership "join" as @a:example.com`},
		{"create_and_send_event_into_room", []any{map[string]any{"type": "m.room.member", "room_id": "!r:x", "sender": "@a:example.com"}}, "update_room_membership"},
		{"check_push_rule_actions", []any{[]any{"notify", "sparkle"}}, `unrecognised action "sparkle"`},
		{"set_push_rule_action", []any{"@a:example.com", "device", "override", "r", []any{"notify"}}, `scope must be "global"`},
		{"account_data_manager.get_global", []any{"@a:other.org", "t"}, "user_id must be a user of this server"},
	}
	for _, c := range cases {
		t.Run(c.method, func(t *testing.T) {
			_, err := h.CallHost(ctx, c.method, c.args)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
	if _, err := h.CallHost(ctx, "check_push_rule_actions", []any{[]any{"notify", map[string]any{"set_tweak": "sound", "value": "default"}}}); err != nil {
		t.Fatalf("valid actions: %v", err)
	}
	_, err := h.CallHost(ctx, "send_mail", nil)
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("send_mail: %v is not ErrUnsupported", err)
	}
}

func TestStateFilterAndMap(t *testing.T) {
	events := []any{
		map[string]any{"type": "m.room.create", "state_key": "", "content": map[string]any{}},
		map[string]any{"type": "m.room.member", "state_key": "@a:x", "content": map[string]any{"membership": "join"}},
		map[string]any{"type": "m.room.member", "state_key": "@b:x", "content": map[string]any{"membership": "invite"}},
		map[string]any{"type": "m.room.message", "content": map[string]any{}}, // no state_key: not state
	}
	cases := []struct {
		name   string
		filter []any
		want   map[string][]string // type → state keys
	}{
		{"no filter", nil, map[string][]string{"m.room.create": {""}, "m.room.member": {"@a:x", "@b:x"}}},
		{"type with any key", []any{[]any{"m.room.member", nil}}, map[string][]string{"m.room.member": {"@a:x", "@b:x"}}},
		{"pair of one: key absent", []any{[]any{"m.room.member"}}, map[string][]string{"m.room.member": {"@a:x", "@b:x"}}},
		{"exact pair", []any{[]any{"m.room.member", "@b:x"}, []any{"m.room.create", ""}}, map[string][]string{"m.room.member": {"@b:x"}, "m.room.create": {""}}},
		{"table form", []any{map[string]any{"type": "m.room.create", "state_key": ""}}, map[string][]string{"m.room.create": {""}}},
		{"empty filter", []any{}, map[string][]string{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := parseFilter(c.filter)
			if err != nil {
				t.Fatal(err)
			}
			got := stateMap(events, f)
			if len(got) != len(c.want) {
				t.Fatalf("got %v", got)
			}
			for typ, keys := range c.want {
				byKey, _ := got[typ].(map[string]any)
				if len(byKey) != len(keys) {
					t.Fatalf("%s: got %v", typ, byKey)
				}
				for _, k := range keys {
					if ev, _ := byKey[k].(map[string]any); ev["state_key"] != k {
						t.Fatalf("%s/%s: got %v", typ, k, byKey[k])
					}
				}
			}
		})
	}
}

func TestMembersLearnedFromTheFeed(t *testing.T) {
	h := testHost(t)
	member := func(sender, target, membership string) map[string]any {
		return map[string]any{"type": "m.room.member", "room_id": "!r:x", "sender": sender, "state_key": target, "content": map[string]any{"membership": membership}}
	}
	steps := []struct {
		event map[string]any
		want  []string
	}{
		{member("@a:example.com", "@a:example.com", "join"), []string{"@a:example.com"}},
		{member("@a:example.com", "@b:example.com", "invite"), []string{"@a:example.com"}},
		{member("@b:example.com", "@b:example.com", "join"), []string{"@b:example.com", "@a:example.com"}},
		{map[string]any{"type": "m.room.message", "room_id": "!r:x", "sender": "@a:example.com"}, []string{"@a:example.com", "@b:example.com"}},
		{member("@r:remote.org", "@r:remote.org", "join"), []string{"@a:example.com", "@b:example.com"}},
		{member("@a:example.com", "@b:example.com", "leave"), []string{"@a:example.com"}},
		{member("@a:example.com", "@a:example.com", "leave"), nil},
	}
	for i, s := range steps {
		h.Observe(s.event)
		if got := h.members.of("!r:x"); strings.Join(got, ",") != strings.Join(s.want, ",") {
			t.Fatalf("step %d: %v, want %v", i, got, s.want)
		}
	}
}
