package httpbridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"luamods/luaapi"
)

const authA = `local M = {}
function M.init(api)
  api.register_password_auth_provider_callbacks{ auth_checkers = {
    ["m.login.password"] = { fields = { "password" }, check = function(username, login_type, login)
      if login_type ~= "m.login.password" then error("wrong login type " .. login_type) end
      if login.password == "boom" then error("checker failed") end
      if username == "@alice:example.com" and login.password == "right" then
        return username, { display_name = "Alice", three_pids = { { medium = "email", address = "alice@example.com" } } }
      end
      if username == "@bob:example.com" and login.password == "right" then return username end
      if username == "@mallory:example.com" then return "@alice:example.com" end
      return nil
    end },
  } }
end
return M`

const authB = `local M = {}
function M.init(api)
  api.register_password_auth_provider_callbacks{ auth_checkers = {
    ["m.login.password"] = { fields = { "password" }, check = function(username, login_type, login)
      if username == "@carol:example.com" and login.password == "right" then return username, { display_name = "Carol" } end
      if login.password == "boom" then return username end
      return nil
    end },
  } }
end
return M`

const restSecret = "rest-s3cret"

// providerLogin is what RestAuthProvider.check_password makes of an answer:
// raise_for_status, then auth.success, then auth.profile (a KeyError when
// a successful answer has no profile key).
type providerLogin struct {
	ok      bool
	profile map[string]any
}

func decodeProvider(status int, body string) (providerLogin, error) {
	if status/100 != 2 {
		return providerLogin{}, fmt.Errorf("HTTPError %d", status)
	}
	var r map[string]map[string]any
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return providerLogin{}, err
	}
	auth := r["auth"]
	if len(auth) == 0 {
		return providerLogin{}, errors.New("Invalid JSON data returned from REST endpoint")
	}
	if auth["success"] != true {
		return providerLogin{}, nil
	}
	profile, present := auth["profile"]
	if !present {
		return providerLogin{}, errors.New("KeyError: profile")
	}
	p, _ := profile.(map[string]any)
	return providerLogin{ok: true, profile: p}, nil
}

// TestRestAuthConformance replays the provider's request (secret in the
// endpoint's userinfo, as requests sends it) and compares the login it
// makes with the auth_checkers result in process.
func TestRestAuthConformance(t *testing.T) {
	for _, modules := range [][]string{{"a.lua"}, {"a.lua", "b.lua"}} {
		t.Run(strings.Join(modules, "+"), func(t *testing.T) {
			cfg := "server_name: example.com\nrest_auth:\n  authorization: " + restSecret + "\nmodules:\n"
			for _, m := range modules {
				cfg += "  - module: " + m + "\n"
			}
			base, eng, _ := testServer(t, map[string]string{"luamods.yaml": cfg, "a.lua": authA, "b.lua": authB})
			endpoint := strings.Replace(base, "http://", "http://luamods:"+restSecret+"@", 1)
			for _, c := range []struct{ user, password string }{
				{"@alice:example.com", "right"}, {"@alice:example.com", "wrong"}, {"@bob:example.com", "right"},
				{"@carol:example.com", "right"}, {"@mallory:example.com", "x"}, {"@dave:example.com", "boom"},
			} {
				name := c.user + "/" + c.password
				body := fmt.Sprintf(`{"user": {"id": %q, "password": %q}}`, c.user, c.password)
				status, _, answer := do(t, "POST", endpoint+restAuthPath, body, "Content-Type", "application/json")
				got, err := decodeProvider(status, answer)
				if err != nil {
					t.Fatalf("%s: the provider fails on %d %s: %v", name, status, answer, err)
				}
				res, err := eng.Invoke(context.Background(), "password_auth_provider.auth_checkers", c.user, "m.login.password", map[string]any{"password": c.password})
				if err != nil {
					t.Fatal(err)
				}
				want := providerLogin{}
				if tup, ok := res.(luaapi.Tuple); ok && tup[0] == c.user {
					want.ok = true
					want.profile, _ = tup[1].(map[string]any)
					if want.profile == nil {
						want.profile = map[string]any{}
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s: the provider logs in %v, in process %v (answer %s)", name, got, want, answer)
				}
			}
		})
	}
}

func TestRestAuthAnswers(t *testing.T) {
	cfg := "server_name: example.com\nrest_auth:\n  authorization: " + restSecret + "\n  max_request_body: 1KiB\nmodules:\n  - module: a.lua\n"
	base, eng, logs := testServer(t, map[string]string{"luamods.yaml": cfg, "a.lua": authA})
	url := base + restAuthPath
	bearer := []string{"Authorization", "Bearer " + restSecret}
	cases := []struct {
		name, body string
		header     []string
		status     int
		want       string
	}{
		{"success with profile", `{"user":{"id":"@alice:example.com","password":"right"}}`, bearer, 200,
			`{"auth":{"mxid":"@alice:example.com","profile":{"display_name":"Alice","three_pids":[{"address":"alice@example.com","medium":"email"}]},"success":true}}`},
		{"success without profile", `{"user":{"id":"@bob:example.com","password":"right"}}`, bearer, 200,
			`{"auth":{"mxid":"@bob:example.com","profile":{},"success":true}}`},
		{"refused", `{"user":{"id":"@bob:example.com","password":"nope"}}`, bearer, 200, `{"auth":{"success":false}}`},
		{"another user's id is refused", `{"user":{"id":"@mallory:example.com","password":"x"}}`, bearer, 200, `{"auth":{"success":false}}`},
		{"no secret", `{"user":{"id":"@bob:example.com","password":"right"}}`, nil, 401, `"errcode":"M_MISSING_TOKEN"`},
		{"wrong bearer", `{"user":{"id":"@bob:example.com","password":"right"}}`, []string{"Authorization", "Bearer nope"}, 403, `"errcode":"M_FORBIDDEN"`},
		{"wrong basic", `{"user":{"id":"@bob:example.com","password":"right"}}`, []string{"Authorization", "Basic bHVhbW9kczpub3Bl"}, 403, `"errcode":"M_FORBIDDEN"`},
		{"not an object", `[1]`, bearer, 400, "must be a JSON object"},
		{"no user", `{"id":"@bob:example.com"}`, bearer, 400, "user must be an object"},
		{"id not a string", `{"user":{"id":5,"password":"right"}}`, bearer, 400, "user.id must be a non-empty string"},
		{"password not a string", `{"user":{"id":"@bob:example.com","password":null}}`, bearer, 400, "user.password must be a string"},
		{"oversized", `{"user":{"id":"@bob:example.com","password":"` + strings.Repeat("x", 2000) + `"}}`, bearer, 413, "M_TOO_LARGE"},
	}
	for _, c := range cases {
		status, _, body := do(t, "POST", url, c.body, c.header...)
		if status != c.status || !strings.Contains(body, c.want) {
			t.Errorf("%s: got %d %s, want %d containing %s", c.name, status, body, c.status, c.want)
		}
	}
	// 4 answered requests ran the checker; the 8 refused ones did not.
	if n := callbackCalls(t, eng, "password_auth_provider.auth_checkers"); n != 4 {
		t.Errorf("auth_checkers ran %v times, want 4", n)
	}
	if !strings.Contains(logs.String(), "a checker vouched for another user") || !strings.Contains(logs.String(), "request_id=") {
		t.Errorf("the mismatch is not logged:\n%s", logs)
	}
}

func TestRestAuthOffWithoutSecret(t *testing.T) {
	base, _, _ := testServer(t, map[string]string{"luamods.yaml": "modules: []\n"})
	status, _, body := do(t, "POST", base+restAuthPath, `{}`, "Authorization", "Bearer x")
	if status != 404 || !strings.Contains(body, "rest_auth endpoint is off") {
		t.Errorf("got %d %s", status, body)
	}
}

// TestRestAuthMissingFields: a checker that needs more than the password
// the provider sends is Synapse's 400 M_MISSING_PARAM, and does not run.
func TestRestAuthMissingFields(t *testing.T) {
	otp := `local M = {}
function M.init(api)
  api.register_password_auth_provider_callbacks{ auth_checkers = {
    ["m.login.password"] = { fields = { "password", "otp" }, check = function(username) return username end },
  } }
end
return M`
	base, eng, _ := testServer(t, map[string]string{"otp.lua": otp,
		"luamods.yaml": "rest_auth: {authorization: " + restSecret + "}\nmodules:\n  - module: otp.lua\n"})
	status, _, body := do(t, "POST", base+restAuthPath, `{"user":{"id":"@a:x","password":"p"}}`, "Authorization", "Bearer "+restSecret)
	if status != 400 || !strings.Contains(body, `"errcode":"M_MISSING_PARAM"`) || !strings.Contains(body, "otp") {
		t.Errorf("got %d %s", status, body)
	}
	if n := callbackCalls(t, eng, "password_auth_provider.auth_checkers"); n != 0 {
		t.Errorf("the checker ran %v times", n)
	}
}
