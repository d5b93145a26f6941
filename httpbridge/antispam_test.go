package httpbridge

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"luamods/engine"
	"luamods/luaapi"
)

// The callbacks synapse-http-antispam v0.5.0 forwards, as its Python
// builds their bodies, and Synapse's message for a denial at each call site.
var antispamCallbacks = []struct {
	name    string
	message string
}{
	{"user_may_join_room", "Not allowed to join this room"},
	{"user_may_invite", "Invites have been disabled on this server"},
	{"user_may_send_3pid_invite", "Cannot send threepid invite"},
	{"user_may_create_room", "You are not permitted to create rooms"},
	{"user_may_create_room_alias", "This user is not permitted to create this alias"},
	{"user_may_publish_room", "This user is not permitted to publish rooms to the room list"},
	{"check_username_for_spam", "Forbidden"},
	{"check_login_for_spam", "Login was blocked by the server"},
	{"check_event_for_spam", "This message has been rejected as probable spam"},
	{"federated_user_may_invite", "This user is not permitted to send invites to this server/user"},
}

// spamA denies anything that mentions "deny-a" with an errcode and extra
// fields, and fails on "boom"; spamB denies "deny-b" with each rule's own
// deprecated or bare form. Both look through every string argument.
const spamCommon = `
local function mentions(v, word)
  if type(v) == "string" then return string.find(v, word, 1, true) ~= nil end
  if type(v) == "table" then
    for k, x in pairs(v) do if mentions(x, word) or mentions(k, word) then return true end end
  end
  return false
end
local names = { "user_may_join_room", "user_may_invite", "user_may_send_3pid_invite", "user_may_create_room",
  "user_may_create_room_alias", "user_may_publish_room", "check_username_for_spam", "check_login_for_spam",
  "check_event_for_spam", "federated_user_may_invite" }
`

const spamA = `local M = {}` + spamCommon + `
function M.init(api)
  local cbs = {}
  for _, name in ipairs(names) do
    cbs[name] = function(...)
      local args = { ... }
      if mentions(args, "boom") then error("boom in " .. name) end
      if mentions(args, "raise-a") then error({ status = 429, errcode = "M_LIMIT_EXCEEDED", error = "slow down" }) end
      if name == "check_username_for_spam" then return mentions(args, "deny-a") end
      if mentions(args, "deny-a") then return "M_LIMIT_EXCEEDED", { retry_after_ms = 5000, by = "a" } end
      if mentions(args, "msg-a") then return "M_FORBIDDEN", { error = "a says no" } end
      return api.NOT_SPAM
    end
  end
  api.register_spam_checker_callbacks(cbs)
end
return M`

const spamB = `local M = {}` + spamCommon + `
function M.init(api)
  local cbs = {}
  for _, name in ipairs(names) do
    cbs[name] = function(...)
      local args = { ... }
      if name == "check_username_for_spam" then return mentions(args, "deny-b") end
      if mentions(args, "code-b") then return "ORG_EXAMPLE_BLOCKED" end
      if mentions(args, "deny-b") then
        if name == "check_event_for_spam" then return "b says no" end
        if name == "check_login_for_spam" then return "M_FORBIDDEN" end
        return false
      end
      if name == "check_event_for_spam" then return false end
      return true
    end
  end
  api.register_spam_checker_callbacks(cbs)
end
return M`

const antispamToken = "antispam-s3cret"

func antispamServer(t *testing.T, modules ...string) (string, *engine.Engine) {
	t.Helper()
	return antispamServerWith(t, "", modules...)
}

// antispamServerWith adds extra lines to the http_antispam section.
func antispamServerWith(t *testing.T, extra string, modules ...string) (string, *engine.Engine) {
	t.Helper()
	files := map[string]string{"a.lua": spamA, "b.lua": spamB}
	cfg := "server_name: example.com\nhttp_antispam:\n  authorization: " + antispamToken + "\n  max_request_body: 4KiB\n" + extra + "modules:\n"
	for _, m := range modules {
		cfg += "  - module: " + m + "\n"
	}
	files["luamods.yaml"] = cfg
	base, eng, _ := testServer(t, files)
	return base + "/_luamods/v1/http_antispam", eng
}

// moduleRequest returns the body synapse-http-antispam sends for callback,
// with word in its first string, and the catalog's positional arguments.
// alt uses user_id/room_id where the module says user/room.
func moduleRequest(callback, word string, alt bool) (map[string]any, []any) {
	user := "@" + word + ":example.com"
	room := "!room:example.com"
	event := map[string]any{
		"type": "m.room.message", "sender": user, "room_id": room, "event_id": "$ev",
		"origin_server_ts": 1700000000000, "content": map[string]any{"msgtype": "m.text", "body": "hello " + word},
		"unsigned": map[string]any{"age": 5},
	}
	switch callback {
	case "user_may_join_room":
		if alt {
			return map[string]any{"user_id": user, "room_id": room, "is_invited": true}, []any{user, room, true}
		}
		return map[string]any{"user": user, "room": room, "is_invited": true}, []any{user, room, true}
	case "user_may_invite":
		return map[string]any{"inviter": user, "invitee": "@bob:example.com", "room_id": room}, []any{user, "@bob:example.com", room}
	case "user_may_send_3pid_invite":
		return map[string]any{"inviter": user, "medium": "email", "address": "bob@example.com", "room_id": room},
			[]any{user, "email", "bob@example.com", room}
	case "user_may_create_room":
		return map[string]any{"user_id": user}, []any{user}
	case "user_may_create_room_alias":
		return map[string]any{"user_id": user, "room_alias": "#a:example.com"}, []any{user, "#a:example.com"}
	case "user_may_publish_room":
		return map[string]any{"user_id": user, "room_id": room}, []any{user, room}
	case "check_username_for_spam":
		profile := map[string]any{"user_id": user, "display_name": "Spam", "avatar_url": nil}
		return map[string]any{"user_profile": profile, "requester_id": "@searcher:example.com"}, []any{profile, "@searcher:example.com"}
	case "check_login_for_spam":
		info := []any{[]any{"Mozilla/5.0", "10.0.0.1"}}
		return map[string]any{"user_id": user, "device_id": "DEV", "initial_display_name": nil, "request_info": info, "auth_provider_id": nil},
			[]any{user, "DEV", nil, info, nil}
	case "check_event_for_spam":
		return map[string]any{"event": event}, []any{event}
	case "federated_user_may_invite":
		invite := map[string]any{"type": "m.room.member", "sender": user, "state_key": "@bob:example.com", "room_id": room,
			"event_id": "$inv", "content": map[string]any{"membership": "invite"},
			"unsigned": map[string]any{"invite_room_state": []any{}}}
		return map[string]any{"event": invite}, []any{invite}
	}
	panic(callback)
}

// synapseCodes are members of Synapse's Codes enum: the module turns an
// errcode into a Codes value and keeps any other in the fields.
var synapseCodes = map[string]bool{"M_FORBIDDEN": true, "M_UNKNOWN": true, "M_LIMIT_EXCEEDED": true}

// verdict is what Synapse ends up with: NOT_SPAM, or the error body a
// client would see.
type verdict struct {
	notSpam bool
	body    map[string]any
}

func (v verdict) String() string {
	if v.notSpam {
		return "NOT_SPAM"
	}
	b, _ := json.Marshal(v.body)
	return string(b)
}

// denial is Synapse's SynapseError(403, message, code, extra): extra
// overrides errcode and error, as cs_error does.
func denial(message, code string, extra map[string]any) verdict {
	body := map[string]any{"errcode": code, "error": message}
	for k, v := range extra {
		body[k] = v
	}
	return verdict{body: body}
}

// viaModule is the verdict the module gives Synapse for an HTTP answer, as
// its _do_request decodes it.
func viaModule(status int, header http.Header, body, message string, failOpen bool) verdict {
	if status/100 == 2 {
		return verdict{notSpam: true}
	}
	var data any
	if !strings.HasPrefix(header.Get("Content-Type"), "application/json") || json.Unmarshal([]byte(body), &data) != nil {
		if failOpen {
			return verdict{notSpam: true}
		}
		return denial(message, "M_UNKNOWN", map[string]any{"error": "Unexpected response from antispam server"})
	}
	obj := data.(map[string]any)
	if code, ok := obj["errcode"].(string); ok && synapseCodes[code] {
		delete(obj, "errcode")
		return denial(message, code, obj)
	}
	return denial(message, "M_FORBIDDEN", obj)
}

// inProcess is the verdict Synapse would reach with the modules loaded in
// process: engine.Invoke's combined result.
func inProcess(res any, message string) verdict {
	switch r := res.(type) {
	case string:
		if r == luaapi.NotSpam {
			return verdict{notSpam: true}
		}
		return denial(message, "M_FORBIDDEN", map[string]any{"error": r})
	case luaapi.Tuple:
		return denial(message, r[0].(string), r[1].(map[string]any))
	}
	panic(fmt.Sprintf("unexpected result %#v", res))
}

func post(t *testing.T, url string, body any, header ...string) (int, http.Header, string) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, "POST", url, string(b), append([]string{"Authorization", "Bearer " + antispamToken, "Content-Type", "application/json"}, header...)...)
}

// TestAntispamConformance replays synapse-http-antispam's requests for
// every callback, decodes the answers as the module does, and compares
// Synapse's verdict with the one the same Lua modules give in process.
func TestAntispamConformance(t *testing.T) {
	for _, modules := range [][]string{{"a.lua"}, {"a.lua", "b.lua"}} {
		t.Run(strings.Join(modules, "+"), func(t *testing.T) {
			url, eng := antispamServer(t, modules...)
			seen := map[string]int{}
			for _, cb := range antispamCallbacks {
				for _, word := range []string{"ok", "deny-a", "msg-a", "deny-b", "code-b", "boom", "raise-a"} {
					for _, alt := range []bool{false, true} {
						if alt && cb.name != "user_may_join_room" {
							continue
						}
						name := fmt.Sprintf("%s/%s/alt=%v", cb.name, word, alt)
						body, args := moduleRequest(cb.name, word, alt)
						status, header, answer := post(t, url+"/"+cb.name, body)
						failOpen := cb.name == "check_event_for_spam" // the module's default
						got := viaModule(status, header, answer, cb.message, failOpen)
						if cb.name == "federated_user_may_invite" && got.notSpam {
							// Synapse then runs the user_may_invite chain.
							inv := body["event"].(map[string]any)
							status, header, answer = post(t, url+"/user_may_invite", map[string]any{
								"inviter": inv["sender"], "invitee": inv["state_key"], "room_id": inv["room_id"]})
							got = viaModule(status, header, answer, cb.message, false)
						}
						res, err := eng.Invoke(context.Background(), "spam_checker."+cb.name, args...)
						seen[map[bool]string{true: "allowed", false: "denied"}[got.notSpam]]++
						if err != nil {
							seen["failed"]++
						}
						errStatus, errBody := engine.HTTPAnswer(err)
						switch {
						case err != nil && errStatus != 500:
							// An error table: Synapse in process answers the client
							// with it; over HTTP it is a denial with the same body.
							if want := (verdict{body: errBody}); got.String() != want.String() {
								t.Errorf("%s: an error table gives %v over HTTP, %v in process", name, got, want)
							}
						case err != nil:
							if status != 500 || strings.HasPrefix(header.Get("Content-Type"), "application/json") {
								t.Errorf("%s: a module error must be a non-JSON 500, got %d %s: %s", name, status, header.Get("Content-Type"), answer)
							}
							want := viaModule(500, http.Header{}, "", cb.message, failOpen)
							if got.String() != want.String() {
								t.Errorf("%s: fail_open must decide: got %v, want %v", name, got, want)
							}
						case cb.name == "check_username_for_spam":
							// The module answers NOT_SPAM, a truthy string: Synapse
							// hides every user it is asked about (docs/synapse.md).
							if res != false && res != true {
								t.Errorf("%s: engine gave %#v", name, res)
							}
							if wantStatus := map[bool]int{false: 200, true: 403}[res == true]; status != wantStatus {
								t.Errorf("%s: status %d, want %d", name, status, wantStatus)
							}
						default:
							if want := inProcess(res, cb.message); got.String() != want.String() {
								t.Errorf("%s: Synapse gets %v over HTTP, %v in process (answer %d %s)", name, got, want, status, answer)
							}
						}
					}
				}
			}
			if seen["allowed"] == 0 || seen["denied"] == 0 || seen["failed"] == 0 {
				t.Errorf("the cases must allow, deny and fail: %v", seen)
			}
		})
	}
}

// TestAntispamVerdicts pins a few answers byte for byte.
func TestAntispamVerdicts(t *testing.T) {
	url, _ := antispamServer(t, "a.lua", "b.lua")
	cases := []struct {
		name, callback string
		body           any
		status         int
		want           string
	}{
		{"allowed", "user_may_invite", map[string]any{"inviter": "@ok:x", "invitee": "@b:x", "room_id": "!r:x"}, 200, `{}`},
		{"errcode and extra", "user_may_invite", map[string]any{"inviter": "@deny-a:x", "invitee": "@b:x", "room_id": "!r:x"}, 403,
			`{"by":"a","errcode":"M_LIMIT_EXCEEDED","error":"Invites have been disabled on this server","retry_after_ms":5000}`},
		{"false", "user_may_join_room", map[string]any{"user": "@deny-b:x", "room": "!r:x", "is_invited": false}, 403,
			`{"errcode":"M_FORBIDDEN","error":"Not allowed to join this room"}`},
		{"message", "check_event_for_spam", map[string]any{"event": map[string]any{"content": map[string]any{"body": "deny-b"}}}, 403,
			`{"errcode":"M_FORBIDDEN","error":"b says no"}`},
		{"absent arguments are nil", "user_may_create_room", map[string]any{}, 200, `{}`},
		{"ping", "ping", map[string]any{"id": "abcdEFGH"}, 200, `{"id":"abcdEFGH","status":"ok"}`},
		{"unknown callback allows", "accept_make_join", map[string]any{"user": "@deny-a:x", "room": "!r:x"}, 200, `{}`},
	}
	for _, c := range cases {
		status, _, body := post(t, url+"/"+c.callback, c.body)
		if status != c.status || strings.TrimSpace(body) != c.want {
			t.Errorf("%s: got %d %s, want %d %s", c.name, status, body, c.status, c.want)
		}
	}
}

// TestAntispamBadInput: bad tokens and bodies get a plain-text 4xx (so the
// module's fail_open decides) and no callback runs.
func TestAntispamBadInput(t *testing.T) {
	url, eng := antispamServer(t, "a.lua")
	join := url + "/user_may_join_room"
	good := `{"user": "@deny-a:x", "room": "!r:x", "is_invited": true}`
	cases := []struct {
		name, body string
		header     []string
		status     int
		want       string
	}{
		{"no token", good, nil, 401, "missing Authorization"},
		{"not bearer", good, []string{"Authorization", "Basic " + antispamToken}, 401, "missing Authorization"},
		{"wrong token", good, []string{"Authorization", "Bearer nope"}, 403, "wrong http_antispam authorization"},
		{"not JSON", "{", []string{"Authorization", "Bearer " + antispamToken}, 400, "not JSON"},
		{"array", `["@a:x", "!r:x", true]`, []string{"Authorization", "Bearer " + antispamToken}, 400, "must be a JSON object"},
		{"wrong type", `{"user": 5, "room": "!r:x"}`, []string{"Authorization", "Bearer " + antispamToken}, 400, "user must be a string"},
		{"wrong bool", `{"user": "@a:x", "room": "!r:x", "is_invited": "yes"}`, []string{"Authorization", "Bearer " + antispamToken}, 400, "is_invited must be a boolean"},
		{"oversized", `{"user": "` + strings.Repeat("x", 5000) + `"}`, []string{"Authorization", "Bearer " + antispamToken}, 413, "max_request_body"},
	}
	for _, c := range cases {
		status, header, body := do(t, "POST", join, c.body, c.header...)
		if status != c.status || !strings.Contains(body, c.want) || !strings.HasPrefix(header.Get("Content-Type"), "text/plain") {
			t.Errorf("%s: got %d %s %q, want %d text/plain containing %q", c.name, status, header.Get("Content-Type"), body, c.status, c.want)
		}
	}
	if n := callbackCalls(t, eng, "spam_checker.user_may_join_room"); n != 0 {
		t.Errorf("bad requests ran the callback %v times", n)
	}
	if status, _, _ := do(t, "POST", join, good, "Authorization", "Bearer "+antispamToken); status != 403 {
		t.Fatalf("good request: %d", status)
	}
	if n := callbackCalls(t, eng, "spam_checker.user_may_join_room"); n != 1 {
		t.Errorf("the good request counted %v calls, want 1", n)
	}
	_, _, metrics := do(t, "GET", strings.TrimSuffix(url, "/_luamods/v1/http_antispam")+"/metrics", "")
	for _, want := range []string{
		`luamods_route_requests_total{code="403",method="POST",route="/_luamods/v1/http_antispam/user_may_join_room"} 2`,
		`luamods_route_requests_total{code="413",method="POST",route="/_luamods/v1/http_antispam/user_may_join_room"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestAntispamAsync: a callback the module sends async runs in every
// module, past a denial, and is answered 200.
func TestAntispamAsync(t *testing.T) {
	url, eng := antispamServerWith(t, "  async: {user_may_join_room: true}\n", "a.lua", "b.lua")
	body := map[string]any{"user": "@deny-a:x", "room": "!r:x", "is_invited": false}
	if status, _, answer := post(t, url+"/user_may_join_room", body); status != 200 || strings.TrimSpace(answer) != "{}" {
		t.Errorf("async: got %d %s", status, answer)
	}
	if n := callbackCalls(t, eng, "spam_checker.user_may_join_room"); n != 2 {
		t.Errorf("async ran %v module callbacks, want both", n)
	}
	// Not async: a.lua's denial stops the chain.
	if status, _, _ := post(t, url+"/user_may_invite", map[string]any{"inviter": "@deny-a:x", "invitee": "@b:x", "room_id": "!r:x"}); status != 403 {
		t.Errorf("sync denial: %d", status)
	}
	if n := callbackCalls(t, eng, "spam_checker.user_may_invite"); n != 1 {
		t.Errorf("sync ran %v module callbacks, want 1", n)
	}
}

// TestAntispamTimeoutIsPlain500: a module stopped at its deadline leaves
// the decision to the module's fail_open.
func TestAntispamTimeoutIsPlain500(t *testing.T) {
	loop := `local M = {}
function M.init(api)
  api.register_spam_checker_callbacks{ user_may_invite = function() while true do end end }
end
return M`
	base, _, logs := testServer(t, map[string]string{"loop.lua": loop,
		"luamods.yaml": "http_antispam: {authorization: " + antispamToken + "}\nmodules:\n  - module: loop.lua\n    timeout: 200ms\n"})
	status, header, body := post(t, base+"/_luamods/v1/http_antispam/user_may_invite", map[string]any{"inviter": "@a:x", "invitee": "@b:x", "room_id": "!r:x"})
	if status != 500 || !strings.HasPrefix(header.Get("Content-Type"), "text/plain") || !strings.Contains(body, "spam_checker.user_may_invite failed") {
		t.Errorf("got %d %s %q", status, header.Get("Content-Type"), body)
	}
	if !strings.Contains(logs.String(), "the module's fail_open decides") || !strings.Contains(logs.String(), "request_id=") {
		t.Errorf("log:\n%s", logs)
	}
}

// TestAntispamFederatedInvite: Synapse sends federated_user_may_invite,
// then (when it allows) user_may_invite; each Lua callback runs once.
func TestAntispamFederatedInvite(t *testing.T) {
	url, eng := antispamServer(t, "a.lua")
	invite, _ := moduleRequest("federated_user_may_invite", "ok", false)
	if status, _, body := post(t, url+"/federated_user_may_invite", invite); status != 200 {
		t.Fatalf("federated_user_may_invite: %d %s", status, body)
	}
	ev := invite["event"].(map[string]any)
	if status, _, body := post(t, url+"/user_may_invite", map[string]any{"inviter": ev["sender"], "invitee": ev["state_key"], "room_id": ev["room_id"]}); status != 200 {
		t.Fatalf("user_may_invite: %d %s", status, body)
	}
	for _, cb := range []string{"spam_checker.federated_user_may_invite", "spam_checker.user_may_invite"} {
		if n := callbackCalls(t, eng, cb); n != 1 {
			t.Errorf("%s ran %v times, want 1", cb, n)
		}
	}
}

func TestAntispamOffWithoutSecret(t *testing.T) {
	base, _, _ := testServer(t, map[string]string{"luamods.yaml": "modules: []\n"})
	status, header, body := do(t, "POST", base+"/_luamods/v1/http_antispam/user_may_invite", `{}`, "Authorization", "Bearer x")
	if status != 404 || !strings.Contains(body, "http_antispam endpoint is off") || !strings.HasPrefix(header.Get("Content-Type"), "text/plain") {
		t.Errorf("got %d %s", status, body)
	}
}

// callbackCalls sums luamods_callback_calls_total for callback over modules.
func callbackCalls(t *testing.T, eng *engine.Engine, callback string) float64 {
	t.Helper()
	families, err := eng.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, f := range families {
		if f.GetName() != "luamods_callback_calls_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "callback" && l.GetValue() == callback {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}
