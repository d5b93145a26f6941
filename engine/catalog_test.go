package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"luamods/luaapi"
)

// Each case loads one module per entry of modules (each registering the
// callback with the given function body), invokes the callback, and checks
// the combined result (as JSON), the error, and which modules ran.
func TestCatalogCombinersAndErrorPolicies(t *testing.T) {
	type tc struct {
		name     string
		callback string
		args     []any
		modules  []string // function bodies, one module each
		want     string   // JSON of the result
		wantErr  string
		calls    []int // calls per module
	}
	event := map[string]any{"type": "m.room.message", "sender": "@a:example.com", "room_id": "!r:example.com", "content": map[string]any{"body": "hi"}}
	cases := []tc{
		// Rule A (user_may_*)
		{"A all allow", "spam_checker.user_may_invite", []any{"@a:x", "@b:x", "!r:x"}, []string{"return api.NOT_SPAM", "return true"}, `"NOT_SPAM"`, "", []int{1, 1}},
		{"A first code stops the chain", "spam_checker.user_may_invite", nil, []string{"return api.errors.CONSENT_NOT_GIVEN", "return api.NOT_SPAM"}, `["M_CONSENT_NOT_GIVEN",{}]`, "", []int{1, 0}},
		{"A code with dict passes the dict", "spam_checker.user_may_join_room", nil, []string{"return api.NOT_SPAM", "return api.errors.BAD_ALIAS, {another_field = '12345'}"}, `["M_BAD_ALIAS",{"another_field":"12345"}]`, "", []int{1, 1}},
		{"A legacy false denies", "spam_checker.user_may_create_room", nil, []string{"return false", "return true"}, `["M_FORBIDDEN",{}]`, "", []int{1, 0}},
		{"A legacy true allows", "spam_checker.user_may_publish_room", nil, []string{"return true", "return true", "return true"}, `"NOT_SPAM"`, "", []int{1, 1, 1}},
		{"A invalid value denies", "spam_checker.user_may_invite", nil, []string{"return 'nonsense'"}, `["M_FORBIDDEN",{}]`, "", []int{1}},
		{"A error propagates", "spam_checker.user_may_invite", nil, []string{"return api.NOT_SPAM", "error('boom')", "return true"}, "", "m2.lua:4: boom", []int{1, 1, 0}},
		{"A expired-account code", "spam_checker.user_may_send_3pid_invite", nil, []string{"return api.errors.EXPIRED_ACCOUNT, {field = 'value'}"}, `["ORG_MATRIX_EXPIRED_ACCOUNT",{"field":"value"}]`, "", []int{1}},
		// Rule B
		{"B false and NOT_SPAM allow", "spam_checker.check_event_for_spam", []any{event}, []string{"return false", "return api.NOT_SPAM"}, `"NOT_SPAM"`, "", []int{1, 1}},
		{"B true denies", "spam_checker.check_event_for_spam", []any{event}, []string{"return true", "return api.NOT_SPAM"}, `["M_FORBIDDEN",{}]`, "", []int{1, 0}},
		{"B plain string is a message", "spam_checker.check_event_for_spam", []any{event}, []string{"return 'ANY OTHER STRING'"}, `"ANY OTHER STRING"`, "", []int{1}},
		{"B code", "spam_checker.check_event_for_spam", []any{event}, []string{"return api.NOT_SPAM", "return api.NOT_SPAM", "return api.errors.LIMIT_EXCEEDED"}, `["M_LIMIT_EXCEEDED",{}]`, "", []int{1, 1, 1}},
		{"B code with dict", "spam_checker.check_event_for_spam", []any{event}, []string{"return api.errors.SERVER_NOT_TRUSTED, {additional_field = '12345'}"}, `["M_SERVER_NOT_TRUSTED",{"additional_field":"12345"}]`, "", []int{1}},
		{"B nil is invalid", "spam_checker.check_event_for_spam", []any{event}, []string{"return nil"}, `"This message has been rejected as probable spam"`, "", []int{1}},
		{"B sees the event", "spam_checker.check_event_for_spam", []any{event}, []string{"local ev = ... if ev.content.body == 'hi' and ev.sender == '@a:example.com' then return api.errors.FORBIDDEN end return api.NOT_SPAM"}, `["M_FORBIDDEN",{}]`, "", []int{1}},
		{"B each module gets its own event", "spam_checker.check_event_for_spam", []any{event}, []string{
			"local ev = ... ev.content.body = 'changed' ev.extra = 1 return api.NOT_SPAM",
			"local ev = ... if ev.content.body == 'hi' and ev.extra == nil then return api.NOT_SPAM end return api.errors.FORBIDDEN"},
			`"NOT_SPAM"`, "", []int{1, 1}},
		// Rules C-G
		{"C plain string denies", "spam_checker.check_media_file_for_spam", nil, []string{"return 'text'"}, `["M_FORBIDDEN",{}]`, "", []int{1}},
		{"D booleans deny", "spam_checker.user_may_send_state_event", nil, []string{"return true"}, `["M_FORBIDDEN",{}]`, "", []int{1}},
		{"D code", "spam_checker.user_may_send_state_event", nil, []string{"return api.NOT_SPAM", "return api.errors.FORBIDDEN"}, `["M_FORBIDDEN",{}]`, "", []int{1, 1}},
		{"E code with dict", "spam_checker.check_login_for_spam", nil, []string{"return api.errors.LIMIT_EXCEEDED, {extra = 'value'}"}, `["M_LIMIT_EXCEEDED",{"extra":"value"}]`, "", []int{1}},
		{"E boolean denies", "spam_checker.check_login_for_spam", nil, []string{"return false"}, `["M_FORBIDDEN",{}]`, "", []int{1}},
		{"F first truthy wins", "spam_checker.check_username_for_spam", nil, []string{"return false", "return true", "return false"}, `true`, "", []int{1, 1, 0}},
		{"F default false", "spam_checker.should_drop_federated_event", nil, []string{"return nil", "return false"}, `false`, "", []int{1, 1}},
		{"G first non-allow wins", "spam_checker.check_registration_for_spam", nil, []string{"return 'allow'", "return 'shadow_ban'", "return 'deny'"}, `"shadow_ban"`, "", []int{1, 1, 0}},
		{"G invalid value fails", "spam_checker.check_registration_for_spam", nil, []string{"return 'maybe'"}, "", `must return "allow"`, []int{1}},
		{"G default allow", "spam_checker.check_registration_for_spam", nil, []string{"return 'allow'", "return api.RegistrationBehaviour.ALLOW"}, `"allow"`, "", []int{1, 1}},
		// Third-party rules
		{"event allowed by all", "third_party_rules.check_event_allowed", []any{event, map[string]any{}}, []string{"return true, nil", "return true"}, `[true,null]`, "", []int{1, 1}},
		{"event denied stops", "third_party_rules.check_event_allowed", []any{event, map[string]any{}}, []string{"return false", "return true"}, `[false,null]`, "", []int{1, 0}},
		{"replacement event stops", "third_party_rules.check_event_allowed", []any{event, map[string]any{}}, []string{"local ev = ... ev.content = {x = 'y'} return true, ev", "return false"}, `[true,{"content":{"x":"y"},"room_id":"!r:example.com","sender":"@a:example.com","type":"m.room.message"}]`, "", []int{1, 0}},
		{"check_event_allowed fails closed", "third_party_rules.check_event_allowed", []any{event}, []string{"error('crash')", "return true"}, "", "crash", []int{1, 0}},
		{"notifications run all and survive errors", "third_party_rules.on_new_event", []any{event}, []string{"error('first fails')", "return nil", "return 5"}, `null`, "", []int{1, 1, 1}},
		{"fail-open check continues", "third_party_rules.check_threepid_can_be_invited", nil, []string{"error('x')", "return false", "return true"}, `false`, "", []int{1, 1, 0}},
		{"fail-open default true", "third_party_rules.check_can_deactivate_user", nil, []string{"error('x')", "return true"}, `true`, "", []int{1, 1}},
		{"on_create_room passes changes on", "third_party_rules.on_create_room", []any{map[string]any{"user": "@a:x"}, map[string]any{"name": "r"}, false},
			[]string{"local _, content = ... content.preset = 'private_chat'", "local _, content = ... content.seen = content.preset"}, `{"name":"r","preset":"private_chat","seen":"private_chat"}`, "", []int{1, 1}},
		{"on_create_room with no content given", "third_party_rules.on_create_room", []any{map[string]any{"user": "@a:x"}},
			[]string{"local _, content = ... return nil"}, `null`, "", []int{1}},
		{"on_create_room refusal", "third_party_rules.on_create_room", []any{nil, map[string]any{}}, []string{"error('no')", "return nil"}, "", "no", []int{1, 0}},
		// Presence
		{"presence sets union", "presence_router.get_interested_users", []any{"@a:x"}, []string{"return {'@a:x'}", "return {'@b:x', '@a:x'}"}, `["@a:x","@b:x"]`, "", []int{1, 1}},
		{"presence ALL stops", "presence_router.get_interested_users", []any{"@a:x"}, []string{"return 'ALL'", "return {'@b:x'}"}, `"ALL"`, "", []int{1, 0}},
		{"presence skips a failing module", "presence_router.get_interested_users", nil, []string{"error('x')", "return 7", "return {'@b:x'}"}, `["@b:x"]`, "", []int{1, 1, 1}},
		{"presence merges per user", "presence_router.get_users_for_states", []any{[]any{}}, []string{"return {['@a:x'] = {'s1'}, ['@c:x'] = {'s3'}}", "return {['@a:x'] = {'s2', 's1'}}"}, `{"@a:x":["s1","s2"],"@c:x":["s3"]}`, "", []int{1, 1}},
		// Account validity
		{"expiry first non-nil, false too", "account_validity.is_user_expired", []any{"@a:x"}, []string{"return nil", "return false", "return true"}, `false`, "", []int{1, 1, 0}},
		{"expiry all nil", "account_validity.is_user_expired", nil, []string{"return nil", "return nil"}, `null`, "", []int{1, 1}},
		{"expiry error propagates", "account_validity.is_user_expired", nil, []string{"error('db down')"}, "", "db down", []int{1}},
		{"on_user_login error propagates", "account_validity.on_user_login", nil, []string{"error('x')", "return nil"}, "", "x", []int{1, 0}},
		// Password auth and registration
		{"username first string", "password_auth_provider.get_username_for_registration", nil, []string{"return 5", "return 'bob'", "return 'carol'"}, `"bob"`, "", []int{1, 1, 0}},
		{"3pid allowed stops at false", "password_auth_provider.is_3pid_allowed", nil, []string{"return true", "return false", "return true"}, `false`, "", []int{1, 1, 0}},
		{"check_3pid_auth skips errors", "password_auth_provider.check_3pid_auth", nil, []string{"error('x')", "return '@u:x'"}, `["@u:x",null]`, "", []int{1, 1}},
		// Unsigned, media, ratelimit
		{"unsigned merged, last wins", "add_extra_fields_to_unsigned_client_event.add_field_to_unsigned_callback", []any{event}, []string{"return {a = 1, b = 1}", "return {b = 2}"}, `{"a":1,"b":2}`, "", []int{1, 1}},
		{"media config first truthy, {} falls through", "media_repository.get_media_config_for_user", nil, []string{"return {}", "return {['m.upload.size'] = 1024}"}, `{"m.upload.size":1024}`, "", []int{1, 1}},
		{"upload size first falsy", "media_repository.is_user_allowed_to_upload_media_of_size", nil, []string{"return true", "return false", "return true"}, `false`, "", []int{1, 1, 0}},
		{"upload limits sorted", "media_repository.get_media_upload_limits_for_user", nil, []string{"return nil", "return {{time_period_ms = 86400000, max_bytes = 5000}, {time_period_ms = 604800000, max_bytes = 15000}}"},
			`[{"max_bytes":15000,"time_period_ms":604800000},{"max_bytes":5000,"time_period_ms":86400000}]`, "", []int{1, 1}},
		{"ratelimit override", "ratelimit.get_ratelimit_override_for_user", nil, []string{"return nil", "return {per_second = 0.1, burst_count = 10}"}, `{"burst_count":10,"per_second":0.1}`, "", []int{1, 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			category, name, _ := strings.Cut(c.callback, ".")
			files := map[string]string{"luamods.yaml": modulesConfig(len(c.modules))}
			for i, body := range c.modules {
				regs := []reg{{category, name, body}}
				if category == "presence_router" {
					other := "get_interested_users"
					if name == other {
						other = "get_users_for_states"
					}
					regs = append(regs, reg{category, other, "return nil"})
				}
				files[fmt.Sprintf("m%d.lua", i+1)] = moduleSource(regs...)
			}
			eng, _, err := startEngine(t, files)
			if err != nil {
				t.Fatal(err)
			}
			res, err := eng.Invoke(context.Background(), c.callback, c.args...)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, c.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			} else if got, _ := luaapi.EncodeJSON(res); string(got) != c.want {
				t.Fatalf("result = %s, want %s", got, c.want)
			}
			for i, want := range c.calls {
				if got := calls(eng, c.callback, fmt.Sprintf("m%d.lua", i+1)); got != want {
					t.Errorf("module m%d.lua called %d times, want %d", i+1, got, want)
				}
			}
		})
	}
}

func TestFederatedInviteChainsIntoUserMayInvite(t *testing.T) {
	eng, _, err := startEngine(t, map[string]string{
		"luamods.yaml": modulesConfig(2),
		"m1.lua":       moduleSource(reg{"spam_checker", "federated_user_may_invite", "return api.NOT_SPAM"}),
		"m2.lua":       moduleSource(reg{"spam_checker", "user_may_invite", "local inviter, invitee, room = ... if inviter == '@evil:remote' and invitee == '@me:example.com' and room == '!r:x' then return api.errors.FORBIDDEN end return api.NOT_SPAM"}),
	})
	if err != nil {
		t.Fatal(err)
	}
	invite := map[string]any{"sender": "@evil:remote", "state_key": "@me:example.com", "room_id": "!r:x", "type": "m.room.member"}
	res, err := eng.Invoke(context.Background(), "spam_checker.federated_user_may_invite", invite)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := luaapi.EncodeJSON(res); string(got) != `["M_FORBIDDEN",{}]` {
		t.Fatalf("got %s", got)
	}
}

func TestErrorTablePassesThroughAsSynapseError(t *testing.T) {
	eng, _, err := startEngine(t, map[string]string{
		"luamods.yaml": modulesConfig(1),
		"m1.lua":       moduleSource(reg{"third_party_rules", "check_event_allowed", "error({status = 429, errcode = 'M_UNKNOWN', error = 'message', nasty = 'very'})"}),
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = eng.Invoke(context.Background(), "third_party_rules.check_event_allowed", map[string]any{}, map[string]any{})
	var ce *CallbackError
	if !errors.As(err, &ce) || ce.Status != 429 || ce.Module != "m1.lua" {
		t.Fatalf("err = %#v", err)
	}
	status, body := HTTPAnswer(err)
	if got, _ := luaapi.EncodeJSON(body); status != 429 || string(got) != `{"errcode":"M_UNKNOWN","error":"message","nasty":"very"}` {
		t.Fatalf("HTTPAnswer = %d %s", status, got)
	}
}

func TestAuthCheckersByLoginType(t *testing.T) {
	eng, _, err := startEngine(t, map[string]string{
		"luamods.yaml": modulesConfig(2),
		"m1.lua": `local M = {}
function M.init(api)
  api.register_password_auth_provider_callbacks{ auth_checkers = {
    ["m.login.password"] = { fields = {"password"}, check = function(user, login_type, login)
      local n = 0 for _ in pairs(login) do n = n + 1 end
      if login.password == "secret" and n == 1 then return api.get_qualified_user_id(user), function() end end
      return nil
    end },
  } }
end
return M`,
		"m2.lua": `local M = {}
function M.init(api)
  api.register_password_auth_provider_callbacks{ auth_checkers = {
    ["com.example.token"] = { fields = {"token"}, check = function(user, t, login) return "@token:example.com" end },
    ["m.login.password"] = { fields = {"password"}, check = function(user) return "@fallback:example.com" end },
  } }
end
return M`,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []struct {
		login map[string]any
		typ   string
		want  string
	}{
		{map[string]any{"password": "secret", "device_id": "D"}, "m.login.password", `["@alice:example.com",null]`},
		{map[string]any{"password": "wrong"}, "m.login.password", `["@fallback:example.com",null]`},
		{map[string]any{"token": "t"}, "com.example.token", `["@token:example.com",null]`},
		{map[string]any{}, "m.login.unknown", `null`},
	} {
		res, err := eng.Invoke(ctx, "password_auth_provider.auth_checkers", "alice", c.typ, c.login)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := luaapi.EncodeJSON(res); string(got) != c.want {
			t.Errorf("%s %v: got %s, want %s", c.typ, c.login, got, c.want)
		}
	}
	_, err = eng.Invoke(ctx, "password_auth_provider.auth_checkers", "alice", "com.example.token", map[string]any{})
	var ce *CallbackError
	if !errors.As(err, &ce) || ce.Status != 400 || !strings.Contains(err.Error(), "Missing parameters for login type com.example.token: [token]") {
		t.Fatalf("missing field: %v", err)
	}
}

func TestRegistrationRules(t *testing.T) {
	cases := []struct {
		name    string
		modules []string
		wantErr string
		wantLog string
	}{
		{"unknown callback", []string{moduleSource(reg{"spam_checker", "user_may_invte", "return true"})},
			`m1.lua:3: register_spam_checker_callbacks: unknown callback "user_may_invte" (did you mean "user_may_invite"?)`, ""},
		{"half a presence router", []string{moduleSource(reg{"presence_router", "get_users_for_states", "return {}"})},
			"presence_router callbacks must be registered all together or not at all", ""},
		{"second single slot", []string{moduleSource(reg{"account_validity", "on_legacy_renew", "return true"}), moduleSource(reg{"account_validity", "on_legacy_renew", "return false"})},
			"tried to register on_legacy_renew twice (module m1.lua already did)", ""},
		{"second controller ignored", []string{moduleSource(reg{"background_update_controller", "on_update", "return 100"}), moduleSource(reg{"background_update_controller", "on_update", "return 5"})},
			"", "only the first module's are used"},
		{"not a function", []string{"local M = {} function M.init(api) api.register_spam_checker_callbacks{ user_may_invite = 5 } end return M"},
			"callback user_may_invite must be a function, not a number", ""},
		{"registration outside init", []string{"local M = {} local a function M.parse_config(c, api) api.register_web_resource('/x', function() end) return c end function M.init() end return M"},
			"registration is only allowed in the module's init function", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			files := map[string]string{"luamods.yaml": modulesConfig(len(c.modules))}
			for i, src := range c.modules {
				files[fmt.Sprintf("m%d.lua", i+1)] = src
			}
			eng, logs, err := startEngine(t, files)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(logs.String(), c.wantLog) {
				t.Fatalf("log lacks %q:\n%s", c.wantLog, logs)
			}
			res, err := eng.Invoke(context.Background(), "background_update_controller.on_update", "u", "main", false)
			if err != nil || res != int64(100) {
				t.Fatalf("on_update = %v, %v; want the first module's 100", res, err)
			}
		})
	}
}

// Chaining is a field of the catalog entry: a host's own category chains
// the same way federated_user_may_invite chains to user_may_invite.
func TestThenChainsHostCallbacks(t *testing.T) {
	c := catalogWithTestCategory()
	if err := c.Add(&Category{Name: "broken", Callbacks: []*Callback{{Name: "x", Combine: RunAll(), Then: "test.run"}}}); err == nil {
		t.Fatal("Then without ThenArgs was accepted")
	}
	if err := c.Add(&Category{Name: "gate", Callbacks: []*Callback{{
		Name: "check", Args: []string{"user"}, Combine: ruleA, Then: "test.run",
		ThenArgs: func(args []any) []any { return []any{"chained", first(args)} },
	}}}); err != nil {
		t.Fatal(err)
	}
	dir := writeFiles(t, map[string]string{
		"luamods.yaml": modulesConfig(1),
		"m1.lua": `local M = {}
function M.init(api)
  api.register_gate_callbacks{ check = function(user) if user == "bad" then return false end return api.NOT_SPAM end }
  api.register_test_callbacks{ run = function(cmd, key) return cmd .. ":" .. key end }
end
return M`,
	})
	eng, err := New(context.Background(), Options{ConfigPath: filepath.Join(dir, "luamods.yaml"), Catalog: c})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	for user, want := range map[string]string{"good": `"chained:good"`, "bad": `["M_FORBIDDEN",{}]`} {
		res, err := eng.Invoke(context.Background(), "gate.check", user)
		if got, _ := luaapi.EncodeJSON(res); err != nil || string(got) != want {
			t.Errorf("gate.check(%s) = %s, %v; want %s", user, got, err, want)
		}
	}
}
