package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"luamods/engine"
	"luamods/internal/dendritetest"
)

// eventually is the generous bound for what a homeserver does in the
// background (a loaded CI machine is slow; the test never waits longer
// than it needs).
const eventually = 2 * time.Minute

// probeModule records what on_new_event got and exposes host methods over
// a web resource, so the test can see the Lua side.
const probeModule = `local M = {}
local api
local seen, creates = {}, {}
function M.init(a)
  api = a
  api.register_third_party_rules_callbacks{ on_new_event = function(event, state_events)
    seen[event.event_id] = (seen[event.event_id] or 0) + 1
    creates[event.event_id] = state_events["m.room.create"] ~= nil and state_events["m.room.create"][""] ~= nil
  end }
  api.register_web_resource("/probe", function(req)
    local q = req.query
    if q.what == "seen" then
      return {status = 200, json = {count = seen[q.id] or 0, had_create = creates[q.id] == true}}
    elseif q.what == "state" then
      local state = api.get_room_state(q.room, {{"m.room.member", api.json.null}, {"m.room.create", ""}})
      local members = {}
      for user, ev in pairs(state["m.room.member"]) do members[user] = ev.content.membership end
      return {status = 200, json = {members = members, creator = state["m.room.create"][""].sender}}
    elseif q.what == "alias" then
      local ok, room_id, servers = pcall(api.lookup_room_alias, q.alias)
      if not ok then return {status = 200, json = {error = tostring(type(room_id) == "table" and room_id.error or room_id)}} end
      return {status = 200, json = {room_id = room_id, servers = servers}}
    elseif q.what == "send" then
      local ev = api.create_and_send_event_into_room({type = "m.room.message", room_id = q.room, sender = q.sender,
        content = {msgtype = "m.notice", body = q.body}})
      api.account_data_manager.put_global(q.sender, "org.example.probe", {last = ev.event_id})
      return {status = 200, json = {event_id = ev.event_id, profile = api.get_profile_for_user(q.sender)}}
    elseif q.what == "whoami" then
      return {status = 200, json = {user_id = api.get_user_by_req(req)}}
    end
    return {status = 404, json = {}}
  end)
end
return M`

// TestMatrixAgainstDendrite runs luamods serve beside a real Dendrite: a
// client's invite is accepted by scripts/auto_accept_invite.lua, the host
// methods round-trip, transactions are processed once.
func TestMatrixAgainstDendrite(t *testing.T) {
	dendritetest.Bin(t)
	script, err := filepath.Abs("../../scripts/auto_accept_invite.lua")
	if err != nil {
		t.Fatal(err)
	}
	dir := writeDir(t, map[string]string{"probe.lua": probeModule, "admin.token": "admin-secret"})
	addr := freePort(t)
	writeConfig := func(hsURL string, backoff int) {
		cfg := fmt.Sprintf(`server_name: example.test
listen: %s
admin_token_file: admin.token
homeserver:
  url: %s
  registration: registration.yaml
modules:
  - module: %s
    config: {join_backoff: %d}
    timeout: 60s
  - module: probe.lua
`, addr, hsURL, script, backoff)
		if err := os.WriteFile(filepath.Join(dir, "luamods.yaml"), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig("http://127.0.0.1:1", 1)
	if code, _, errOut := runCLI(dir, "", "registration", "-c", filepath.Join(dir, "luamods.yaml")); code != 0 {
		t.Fatalf("luamods registration: %s", errOut)
	}
	reg, err := engine.LoadRegistration(filepath.Join(dir, "registration.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	hs := dendritetest.Start(t, "example.test", filepath.Join(dir, "registration.yaml"))
	writeConfig(hs.URL, 1)
	alice := hs.CreateUser(t, "alice", false)
	bob := hs.CreateUser(t, "bob", false)
	srv := startServer(t, dir, "-c", "luamods.yaml")
	probe := func(q url.Values) map[string]any {
		t.Helper()
		status, body := srv.get("/probe?" + q.Encode())
		var out map[string]any
		if status != 200 || json.Unmarshal([]byte(body), &out) != nil {
			t.Fatalf("probe %v: %d %s\n%s", q, status, body, srv.log())
		}
		return out
	}
	esc := url.PathEscape

	// A client invites bob to a direct chat; the Lua module joins him.
	var created struct {
		RoomID string `json:"room_id"`
	}
	alice.Must(t, "POST", "/_matrix/client/v3/createRoom", map[string]any{"preset": "private_chat", "room_alias_name": "tea"}, &created)
	room := created.RoomID
	alice.Must(t, "POST", "/_matrix/client/v3/rooms/"+esc(room)+"/invite", map[string]any{"user_id": bob.UserID}, nil)
	dendritetest.WaitFor(t, eventually, "bob's join by the module", func() bool {
		var m map[string]any
		err := alice.Do(t.Context(), "GET", "/_matrix/client/v3/rooms/"+esc(room)+"/state/m.room.member/"+esc(bob.UserID), nil, &m)
		return err == nil && m["membership"] == "join"
	})

	t.Run("on_new_event got the state map", func(t *testing.T) {
		var state []map[string]any
		alice.Must(t, "GET", "/_matrix/client/v3/rooms/"+esc(room)+"/state", nil, &state)
		for _, ev := range state {
			if ev["type"] == "m.room.member" && ev["state_key"] == bob.UserID {
				// bob's join replaced the invite; the feed brings the join event to
				// the probe with the room's create event in its state.
				id := ev["event_id"].(string)
				dendritetest.WaitFor(t, eventually, "the feed's join event", func() bool {
					return probe(url.Values{"what": {"seen"}, "id": {id}})["count"] != 0.0
				})
				got := probe(url.Values{"what": {"seen"}, "id": {id}})
				if got["count"] != 1.0 || got["had_create"] != true {
					t.Fatalf("the probe saw bob's join %v", got)
				}
			}
		}
	})

	t.Run("get_room_state from Lua", func(t *testing.T) {
		got := probe(url.Values{"what": {"state"}, "room": {room}})
		members, _ := got["members"].(map[string]any)
		if members[alice.UserID] != "join" || members[bob.UserID] != "join" || got["creator"] != alice.UserID {
			t.Fatalf("state %v", got)
		}
	})

	t.Run("lookup_room_alias from Lua", func(t *testing.T) {
		got := probe(url.Values{"what": {"alias"}, "alias": {"#tea:example.test"}})
		if got["room_id"] != room || len(got["servers"].([]any)) == 0 {
			t.Fatalf("alias %v", got)
		}
	})

	t.Run("send, account data and profile from Lua", func(t *testing.T) {
		got := probe(url.Values{"what": {"send"}, "room": {room}, "sender": {bob.UserID}, "body": {"sent by lua"}})
		id, _ := got["event_id"].(string)
		var ev struct {
			Sender  string         `json:"sender"`
			Content map[string]any `json:"content"`
		}
		alice.MustSee(t, eventually, "GET", "/_matrix/client/v3/rooms/"+esc(room)+"/event/"+esc(id), &ev, func() bool {
			return ev.Sender == bob.UserID && ev.Content["body"] == "sent by lua"
		})
		var data map[string]any
		bob.MustSee(t, eventually, "GET", "/_matrix/client/v3/user/"+esc(bob.UserID)+"/account_data/org.example.probe", &data, func() bool {
			return data["last"] == id
		})
		if p, _ := got["profile"].(map[string]any); p["display_name"] != "bob" {
			t.Fatalf("profile %v", got["profile"])
		}
	})

	t.Run("get_user_by_req", func(t *testing.T) {
		for _, c := range []struct {
			auth   string
			status int
			want   string
		}{
			{"Bearer " + alice.Token, 200, `"user_id":"` + alice.UserID + `"`},
			{"Bearer wrong", 401, `"errcode":"M_UNKNOWN_TOKEN"`},
			{"", 401, `"errcode":"M_MISSING_TOKEN"`},
		} {
			req, _ := http.NewRequest("GET", "http://"+srv.addr+"/probe?what=whoami", nil)
			if c.auth != "" {
				req.Header.Set("Authorization", c.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status || !strings.Contains(string(body), c.want) {
				t.Errorf("%q: %d %s", c.auth, resp.StatusCode, body)
			}
		}
	})

	txn := func(id, token string, events ...string) int {
		t.Helper()
		var evs []string
		for _, e := range events {
			evs = append(evs, fmt.Sprintf(`{"type": "org.example.ping", "event_id": %q, "room_id": %q, "sender": %q, "content": {}}`, e, room, alice.UserID))
		}
		req, _ := http.NewRequest("PUT", "http://"+srv.addr+"/_matrix/app/v1/transactions/"+id, strings.NewReader(`{"events": [`+strings.Join(evs, ",")+`]}`))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	seen := func(id string) float64 { return probe(url.Values{"what": {"seen"}, "id": {id}})["count"].(float64) }

	t.Run("a repeated transaction is processed once, even across a reload", func(t *testing.T) {
		if got := txn("test-1", "wrong-token", "$wrong"); got != 403 {
			t.Fatalf("wrong hs_token: %d", got)
		}
		if got := txn("test-1", reg.HSToken, "$once"); got != 200 {
			t.Fatalf("first: %d", got)
		}
		dendritetest.WaitFor(t, eventually, "the transaction's event", func() bool { return seen("$once") == 1 })
		if got := txn("test-1", reg.HSToken, "$once"); got != 200 {
			t.Fatalf("again: %d", got)
		}
		writeConfig(hs.URL, 2) // auto_accept_invite reloads; the probe carries over with its counts
		status, body := srvPost(t, srv, "/_luamods/v1/reload", "admin-secret")
		if status != 200 {
			t.Fatalf("reload: %d %s", status, body)
		}
		if got := txn("test-1", reg.HSToken, "$once"); got != 200 {
			t.Fatalf("after the reload: %d", got)
		}
		if got := txn("test-2", reg.HSToken, "$marker"); got != 200 {
			t.Fatalf("marker: %d", got)
		}
		dendritetest.WaitFor(t, eventually, "the marker event", func() bool { return seen("$marker") == 1 })
		if got := seen("$once"); got != 1 {
			t.Fatalf("$once processed %v times", got)
		}
		if got := seen("$wrong"); got != 0 {
			t.Fatalf("an event with a wrong hs_token was processed")
		}
	})

	t.Run("homeserver down", func(t *testing.T) {
		hs.Stop()
		got := probe(url.Values{"what": {"alias"}, "alias": {"#tea:example.test"}})
		if msg, _ := got["error"].(string); !strings.Contains(msg, "lookup_room_alias: GET /_matrix/client/v3/directory/room/%23tea:example.test: homeserver at "+hs.URL+" unreachable") {
			t.Fatalf("got %v", got)
		}
	})
}

// srvPost posts to the server with a bearer token.
func srvPost(t *testing.T, s *server, path, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+s.addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
