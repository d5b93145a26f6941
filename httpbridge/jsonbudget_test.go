package httpbridge

import (
	"strings"
	"testing"
)

// TestHostEndpointsRefuseJSONOverBudget: the invoke API, http_antispam and
// rest_auth decode their bodies in Go; a body over max_request_json_nodes
// is 413 and one nested too deeply 400, and no callback runs.
func TestHostEndpointsRefuseJSONOverBudget(t *testing.T) {
	module := `local M = {}
function M.init(api)
  api.register_spam_checker_callbacks{ user_may_join_room = function() return "NOT_SPAM" end }
  api.register_password_auth_provider_callbacks{ auth_checkers = {
    ["m.login.password"] = { fields = { "password" }, check = function(username) return username end },
  } }
end
return M`
	base, eng, _ := testServer(t, map[string]string{"m.lua": module, "luamods.yaml": "admin_token: s3cret\nmax_request_json_nodes: 100\n" +
		"http_antispam: {authorization: " + antispamToken + "}\nrest_auth: {authorization: " + restSecret + "}\nmodules:\n  - module: m.lua\n"})
	many := `{"user":{"id":"@a:x","password":"p"},"room":"!r:x","pad":[` + strings.Repeat("0,", 100) + `0]}`
	deep := `{"user":{"id":"@a:x","password":"p"},"room":"!r:x","pad":` + strings.Repeat("[", 65) + strings.Repeat("]", 65) + `}`
	for _, ep := range []struct {
		name, path, secret, callback string
		wantMany, wantDeep           string
	}{
		{"invoke", "/_luamods/v1/invoke/spam_checker/user_may_join_room", "s3cret", "spam_checker.user_may_join_room",
			`{"errcode":"M_TOO_LARGE","error":"Request JSON has more than 100 values and keys (max_request_json_nodes)"}`,
			`{"errcode":"M_NOT_JSON","error":"Request JSON nests arrays and objects more than 64 levels deep"}`},
		{"http_antispam", "/_luamods/v1/http_antispam/user_may_join_room", antispamToken, "spam_checker.user_may_join_room",
			"luamods: Request JSON has more than 100 values and keys (max_request_json_nodes)",
			"luamods: Request JSON nests arrays and objects more than 64 levels deep"},
		{"rest_auth", restAuthPath, restSecret, "password_auth_provider.auth_checkers",
			`{"errcode":"M_TOO_LARGE","error":"Request JSON has more than 100 values and keys (max_request_json_nodes)"}`,
			`{"errcode":"M_NOT_JSON","error":"Request JSON nests arrays and objects more than 64 levels deep"}`},
	} {
		t.Run(ep.name, func(t *testing.T) {
			body := func(b string) string {
				if ep.name == "invoke" {
					return "[" + b + "]"
				}
				return b
			}
			for _, c := range []struct {
				body, want string
				status     int
			}{{body(many), ep.wantMany, 413}, {body(deep), ep.wantDeep, 400}} {
				status, _, got := do(t, "POST", base+ep.path, c.body, "Authorization", "Bearer "+ep.secret)
				if status != c.status || !strings.HasPrefix(strings.TrimSpace(got), c.want) {
					t.Errorf("%d %s, want %d %s", status, got, c.status, c.want)
				}
			}
			if n := callbackCalls(t, eng, ep.callback); n != 0 {
				t.Errorf("refused bodies ran %s %v times", ep.callback, n)
			}
		})
	}
}
