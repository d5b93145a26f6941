package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// spinModule's /spin route holds its state (a Lua loop, until the test
// kills the server); /fast and the callback answer at once.
const spinModule = `local M = {}
function M.init(api)
  api.register_web_resource("/_synapse/client/spin", function()
    api.log.info("spinning now")
    while true do end
  end)
  api.register_web_resource("/_synapse/client/fast", function() return {status = 200, body = "fast"} end)
  api.register_spam_checker_callbacks{ user_may_invite = function() return api.NOT_SPAM end }
end
return M`

// TestServeAnswers503WhenTheQueueIsFull: a real luamods serve whose only
// state is busy and has max_queued_calls calls waiting answers the next
// route request and the next invoke at once with 503, Retry-After: 1 and
// M_LIMIT_EXCEEDED, and counts them.
func TestServeAnswers503WhenTheQueueIsFull(t *testing.T) {
	addr := freePort(t)
	dir := writeDir(t, map[string]string{
		"luamods.yaml": "listen: " + addr + "\nadmin_token: tok\nmodules:\n  - module: spin.lua\n    timeout: 10m\n    max_queued_calls: 2\n",
		"spin.lua":     spinModule,
	})
	s := startServer(t, dir, "-c", "luamods.yaml")
	get := func(path string) { // a request left waiting; the server is killed at the end
		if resp, err := http.Get("http://" + addr + path); err == nil {
			resp.Body.Close()
		}
	}
	go get("/_synapse/client/spin")
	eventuallyTrue(t, "spinning", func() bool { return strings.Contains(s.log(), "spinning now") })
	for i := 0; i < 2; i++ {
		go get("/_synapse/client/fast")
	}
	eventuallyTrue(t, "two calls queued", func() bool {
		_, metrics := s.get("/metrics")
		return strings.Contains(metrics, `luamods_queued_calls{module="spin.lua"} 2`)
	})

	check := func(what string, resp *http.Response) {
		t.Helper()
		defer resp.Body.Close()
		var body map[string]any
		raw, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(raw, &body)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" || body["errcode"] != "M_LIMIT_EXCEEDED" {
			t.Fatalf("%s: %d Retry-After=%q %s; want 503, 1, M_LIMIT_EXCEEDED", what, resp.StatusCode, resp.Header.Get("Retry-After"), raw)
		}
	}
	resp, err := http.Get("http://" + addr + "/_synapse/client/fast")
	if err != nil {
		t.Fatal(err)
	}
	check("route", resp)
	req, _ := http.NewRequest("POST", "http://"+addr+"/_luamods/v1/invoke/spam_checker/user_may_invite", strings.NewReader(`["@a:x", "@b:x", "!r:x"]`))
	req.Header.Set("Authorization", "Bearer tok")
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	check("invoke", resp)
	if _, metrics := s.get("/metrics"); !strings.Contains(metrics, `luamods_refused_calls_total{module="spin.lua",reason="queue_full"} 2`) {
		t.Fatalf("metrics lack the refused calls:\n%s", metrics)
	}
	req, _ = http.NewRequest("GET", "http://"+addr+"/_luamods/v1/modules", nil)
	req.Header.Set("Authorization", "Bearer tok")
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var modules struct{ Modules []map[string]any }
	if err := json.NewDecoder(resp.Body).Decode(&modules); err != nil || len(modules.Modules) != 1 ||
		modules.Modules[0]["inflight"] != 3.0 || modules.Modules[0]["queued"] != 2.0 {
		t.Fatalf("GET modules: %v %+v, want inflight 3, queued 2", err, modules)
	}
}
