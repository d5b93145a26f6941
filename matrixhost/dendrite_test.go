package matrixhost

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"luamods/internal/dendritetest"
	"luamods/luaapi"
)

// dendriteHost starts a Dendrite with an appservice registration and
// returns it with a Host over it.

// eventually bounds a wait for Dendrite to show a write (only for
// "eventually": never a judgement of speed).
const eventually = 2 * time.Minute

func dendriteHost(t *testing.T) (*dendritetest.Server, *Host) {
	t.Helper()
	dendritetest.Bin(t)
	reg := filepath.Join(t.TempDir(), "registration.yaml")
	const as, hs = "as-token-for-tests-0123456789", "hs-token-for-tests-0123456789"
	body := fmt.Sprintf("id: luamods\nurl: http://127.0.0.1:9\nas_token: %s\nhs_token: %s\nsender_localpart: luamods\nnamespaces:\n  users:\n    - exclusive: false\n      regex: '@.*:example\\.test'\nrate_limited: false\n", as, hs)
	if err := os.WriteFile(reg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := dendritetest.Start(t, "example.test", reg)
	h, err := New(Options{URL: srv.URL, ServerName: "example.test", ASToken: as, SenderLocalpart: "luamods"})
	if err != nil {
		t.Fatal(err)
	}
	return srv, h
}

func mustCall(t *testing.T, h *Host, method string, args ...any) any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := h.CallHost(ctx, method, args)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	return res
}

// TestHostAgainstDendrite: the host methods round-trip through a real
// Dendrite, checked from a client's side.
func TestHostAgainstDendrite(t *testing.T) {
	srv, h := dendriteHost(t)
	alice := srv.CreateUser(t, "alice", false)
	bob := srv.CreateUser(t, "bob", false)
	esc := url.PathEscape

	res := mustCall(t, h, "create_room", alice.UserID, map[string]any{"room_alias_name": "lobby", "name": "Lobby"}).(luaapi.Tuple)
	room, _ := res[0].(string)
	if !strings.HasPrefix(room, "!") || res[1] != "#lobby:example.test" {
		t.Fatalf("create_room: %v", res)
	}

	t.Run("get_room_state", func(t *testing.T) {
		state := mustCall(t, h, "get_room_state", room).(map[string]any)
		if stateEvent(state, "m.room.create", "") == nil || stateEvent(state, "m.room.member", alice.UserID) == nil {
			t.Fatalf("state lacks the create event or alice: %v", state)
		}
		name := stateEvent(state, "m.room.name", "")["content"].(map[string]any)["name"]
		if name != "Lobby" {
			t.Fatalf("name %v", name)
		}
		filtered := mustCall(t, h, "get_room_state", room, []any{[]any{"m.room.member", nil}}).(map[string]any)
		if len(filtered) != 1 || stateEvent(filtered, "m.room.member", alice.UserID) == nil {
			t.Fatalf("filtered: %v", filtered)
		}
	})

	t.Run("lookup_room_alias", func(t *testing.T) {
		res := mustCall(t, h, "lookup_room_alias", "#lobby:example.test").(luaapi.Tuple)
		if res[0] != room || len(res[1].([]any)) == 0 {
			t.Fatalf("lookup: %v", res)
		}
		var dir struct {
			RoomID string `json:"room_id"`
		}
		alice.MustSee(t, eventually, "GET", "/_matrix/client/v3/directory/room/"+esc("#lobby:example.test"), &dir, func() bool {
			return dir.RoomID == room
		})
		_, err := h.CallHost(context.Background(), "lookup_room_alias", []any{"#nowhere:example.test"})
		if err == nil || !strings.Contains(err.Error(), "M_NOT_FOUND") {
			t.Fatalf("unknown alias: %v", err)
		}
	})

	t.Run("create_and_send_event_into_room", func(t *testing.T) {
		msg := mustCall(t, h, "create_and_send_event_into_room", map[string]any{
			"type": "m.room.message", "room_id": room, "sender": alice.UserID, "content": map[string]any{"msgtype": "m.text", "body": "hello from lua"},
		}).(map[string]any)
		var ev struct {
			Sender  string         `json:"sender"`
			Content map[string]any `json:"content"`
		}
		alice.MustSee(t, eventually, "GET", "/_matrix/client/v3/rooms/"+esc(room)+"/event/"+esc(msg["event_id"].(string)), &ev, func() bool {
			return ev.Sender == alice.UserID && ev.Content["body"] == "hello from lua"
		})
		mustCall(t, h, "create_and_send_event_into_room", map[string]any{
			"type": "m.room.topic", "state_key": "", "room_id": room, "sender": alice.UserID, "content": map[string]any{"topic": "set by lua"},
		})
		var topic map[string]any
		alice.MustSee(t, eventually, "GET", "/_matrix/client/v3/rooms/"+esc(room)+"/state/m.room.topic/", &topic, func() bool {
			return topic["topic"] == "set by lua"
		})
	})

	t.Run("update_room_membership", func(t *testing.T) {
		ev := mustCall(t, h, "update_room_membership", alice.UserID, bob.UserID, room, "invite").(map[string]any)
		if ev["state_key"] != bob.UserID || ev["content"].(map[string]any)["membership"] != "invite" || ev["event_id"] == nil {
			t.Fatalf("invite event: %v", ev)
		}
		ev = mustCall(t, h, "update_room_membership", bob.UserID, bob.UserID, room, "join").(map[string]any)
		if ev["content"].(map[string]any)["membership"] != "join" {
			t.Fatalf("join event: %v", ev)
		}
		var joined struct {
			Joined map[string]any `json:"joined"`
		}
		alice.MustSee(t, eventually, "GET", "/_matrix/client/v3/rooms/"+esc(room)+"/joined_members", &joined, func() bool {
			_, ok := joined.Joined[bob.UserID]
			return ok
		})
	})

	t.Run("account_data", func(t *testing.T) {
		if got := mustCall(t, h, "account_data_manager.get_global", alice.UserID, "org.example.prefs"); got != nil {
			t.Fatalf("missing account data: %v", got)
		}
		mustCall(t, h, "account_data_manager.put_global", alice.UserID, "org.example.prefs", map[string]any{"theme": "dark"})
		var got map[string]any
		alice.MustSee(t, eventually, "GET", "/_matrix/client/v3/user/"+esc(alice.UserID)+"/account_data/org.example.prefs", &got, func() bool {
			return got["theme"] == "dark"
		})
		alice.Must(t, "PUT", "/_matrix/client/v3/user/"+esc(alice.UserID)+"/account_data/org.example.prefs", map[string]any{"theme": "light"}, nil)
		dendritetest.WaitFor(t, eventually, "the host seeing the client's account data", func() bool {
			v, _ := mustCall(t, h, "account_data_manager.get_global", alice.UserID, "org.example.prefs").(map[string]any)
			return v["theme"] == "light"
		})
	})

	t.Run("profile", func(t *testing.T) {
		mustCall(t, h, "set_displayname", alice.UserID, "Alice Liddell")
		var p map[string]any
		bob.MustSee(t, eventually, "GET", "/_matrix/client/v3/profile/"+esc(alice.UserID), &p, func() bool {
			return p["displayname"] == "Alice Liddell"
		})
		if got := mustCall(t, h, "get_profile_for_user", "alice").(map[string]any); got["display_name"] != "Alice Liddell" {
			t.Fatalf("host sees %v", got)
		}
	})

	t.Run("users", func(t *testing.T) {
		if got := mustCall(t, h, "check_user_exists", alice.UserID); got != alice.UserID {
			t.Fatalf("alice: %v", got)
		}
		if got := mustCall(t, h, "check_user_exists", "@nobody:example.test"); got != nil {
			t.Fatalf("nobody: %v", got)
		}
		if got := mustCall(t, h, "register_user", "carol", "Carol"); got != "@carol:example.test" {
			t.Fatalf("register_user: %v", got)
		}
		if got := mustCall(t, h, "get_profile_for_user", "carol").(map[string]any); got["display_name"] != "Carol" {
			t.Fatalf("carol's profile: %v", got)
		}
		if got := mustCall(t, h, "get_user_by_req", alice.Token); got != alice.UserID {
			t.Fatalf("get_user_by_req: %v", got)
		}
		_, err := h.CallHost(context.Background(), "get_user_by_req", []any{"not-a-token"})
		var me *luaapi.MatrixError
		if !errors.As(err, &me) || me.Status != 401 || me.Errcode != "M_UNKNOWN_TOKEN" {
			t.Fatalf("bad token: %v", err)
		}
		_, err = h.CallHost(context.Background(), "is_user_admin", []any{alice.UserID})
		if err == nil || !strings.Contains(err.Error(), "admin_token_path") {
			t.Fatalf("is_user_admin without an admin token: %v", err)
		}
	})

	t.Run("more rooms and users", func(t *testing.T) {
		ctx := context.Background()
		try := func(method string, args ...any) (any, error) { return h.CallHost(ctx, method, args) }
		for _, c := range []struct {
			method string
			args   []any
			check  func(any) bool
		}{
			{"get_threepids_for_user", []any{alice.UserID}, func(v any) bool { l, ok := v.([]any); return ok && len(l) == 0 }},
			{"get_state_events_in_room", []any{room, []any{[]any{"m.room.create", ""}}}, func(v any) bool { l, _ := v.([]any); return len(l) == 1 }},
			{"get_canonical_room_alias", []any{room}, func(v any) bool { return v == nil || v == "#lobby:example.test" }},
			{"check_username", []any{"dinah"}, func(v any) bool { return v == nil }},
			{"public_room_list_manager.room_is_in_public_room_list", []any{room}, func(v any) bool { return v == false }},
			{"public_room_list_manager.add_room_to_public_room_list", []any{room}, func(v any) bool { return v == nil }},
			{"public_room_list_manager.room_is_in_public_room_list", []any{room}, func(v any) bool { return v == true }},
			{"set_presence_for_users", []any{map[string]any{alice.UserID: []any{"online", "here"}}}, func(v any) bool { return v == nil }},
			{"set_push_rule_action", []any{alice.UserID, "global", "override", ".m.rule.suppress_notices", []any{"dont_notify"}}, func(v any) bool { return v == nil }},
		} {
			got, err := try(c.method, c.args...)
			if err != nil || !c.check(got) {
				t.Errorf("%s: %v, %v", c.method, got, err)
			}
		}
		if _, err := try("check_username", "alice"); err == nil || !strings.Contains(err.Error(), "M_USER_IN_USE") {
			t.Errorf("check_username of a taken name: %v", err)
		}
		var presence map[string]any
		bob.MustSee(t, eventually, "GET", "/_matrix/client/v3/presence/"+esc(alice.UserID)+"/status", &presence, func() bool {
			return presence["presence"] == "online"
		})
		dave := srv.CreateUser(t, "dave", false)
		if _, err := try("invalidate_access_token", dave.Token); err != nil {
			t.Errorf("invalidate_access_token: %v", err)
		}
		if err := dave.Do(ctx, "GET", "/_matrix/client/v3/account/whoami", nil, nil); err == nil || !strings.Contains(err.Error(), "401") {
			t.Errorf("dave's token still works: %v", err)
		}
	})

	t.Run("homeserver down", func(t *testing.T) {
		srv.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := h.CallHost(ctx, "get_profile_for_user", []any{"alice"})
		if err == nil || !strings.Contains(err.Error(), "GET /_matrix/client/v3/profile/@alice:example.test: homeserver at "+srv.URL+" unreachable") {
			t.Fatalf("got %v", err)
		}
	})
}

// TestHostHonoursTheCallDeadline: a homeserver that accepts connections
// and never answers cannot hold a call past its deadline.
func TestHostHonoursTheCallDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	h, err := New(Options{URL: "http://" + ln.Addr().String(), ServerName: "example.test", ASToken: "as"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = h.CallHost(ctx, "get_room_state", []any{"!r:example.test"})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("got %v", err)
	}
}
