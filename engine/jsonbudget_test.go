package engine

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"luamods/luaapi"
)

// budgetModule counts the requests its handler runs and answers the count
// with what request.json gave it (its type, or the error it raised).
const budgetModule = `local M = {}
function M.init(api, config)
  local served = 0
  api.register_web_resource("/_synapse/client/budget", function(request)
    served = served + 1
    local ok, v = pcall(function() return request.json end)
    return {json = {served = served, json = ok and type(v) or tostring(v)}}
  end)
end
return M`

// TestServeRefusesJSONOverBudget: a JSON body over max_request_json_nodes
// is 413, one nested too deeply 400, both before the handler runs; a body
// that does not say it is JSON reaches the handler, whose request.json
// raises an error it can catch.
func TestServeRefusesJSONOverBudget(t *testing.T) {
	eng, _, err := startEngine(t, map[string]string{
		"luamods.yaml": "server_name: example.com\nmax_request_json_nodes: 100\nmodules:\n  - module: budget.lua\n",
		"budget.lua":   budgetModule,
	})
	if err != nil {
		t.Fatal(err)
	}
	many := "[" + strings.Repeat("0,", 100) + "0]" // 102 nodes
	deep := strings.Repeat("[", luaapi.MaxDepth+1) + strings.Repeat("]", luaapi.MaxDepth+1)
	for _, tc := range []struct {
		name, ctype, body string
		status            int
		want              string
	}{
		{"too many", "application/json", many, 413, `{"errcode":"M_TOO_LARGE","error":"Request JSON has more than 100 values and keys (max_request_json_nodes)"}`},
		{"too many, +json with a charset", "application/vnd.example+json; charset=utf-8", many, 413, `"M_TOO_LARGE"`},
		{"too deep", "application/json", deep, 400, `{"errcode":"M_NOT_JSON","error":"Request JSON nests arrays and objects more than 64 levels deep"}`},
		{"within", "application/json", `[1,2,{"a":"[[[["}]`, 200, `{"json":"table","served":1}`},
		{"not said to be JSON", "", many, 200, `budget.lua:6: request.json: too many JSON values: more than 100 values and keys (max_request_json_nodes)","served":2}`},
		{"not JSON at all", "text/plain", many, 200, `{"json":"nil","served":3}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := eng.Serve(context.Background(), &WebRequest{
				Method: "POST", Path: "/_synapse/client/budget", Header: http.Header{"Content-Type": {tc.ctype}},
				Body: strings.NewReader(tc.body), ContentLength: int64(len(tc.body)),
			})
			if resp.Status != tc.status || !strings.Contains(string(resp.Body), tc.want) {
				t.Fatalf("%d %s, want %d %s", resp.Status, resp.Body, tc.status, tc.want)
			}
		})
	}
}

func TestMaxRequestJSONNodesConfig(t *testing.T) {
	cfg, err := ParseConfig("luamods.yaml", []byte("modules: []\n"))
	if err != nil || cfg.MaxRequestJSONNodes != luaapi.DefaultMaxJSONNodes {
		t.Fatalf("default: %v, %v", cfg, err)
	}
	_, err = ParseConfig("luamods.yaml", []byte("max_request_json_nodes: 0\n"))
	if want := "Error in configuration at 'max_request_json_nodes': expected a whole number from 1 to 1073741824"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("0: %v, want %q", err, want)
	}
}
