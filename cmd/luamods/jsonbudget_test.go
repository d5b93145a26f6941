package main

import (
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
)

// TestServeRefusesJSONOverBudget: through a real luamods serve, the shipped
// hello route (whose POST echoes request.json) refuses a 10 MiB JSON array
// with 413 and a too-deep body with 400, the engine's answers (the handler,
// had it run, would have failed with a 500 reading request.json); a small
// JSON body is still echoed. engine's test of the same name shows the
// handler does not run.
func TestServeRefusesJSONOverBudget(t *testing.T) {
	hello, err := os.ReadFile("../../scripts/hello.lua")
	if err != nil {
		t.Fatal(err)
	}
	dir := writeDir(t, map[string]string{
		"luamods.yaml": "listen: " + freePort(t) + "\nmodules:\n  - module: hello.lua\n    config: {greeting: hi}\n",
		"hello.lua":    string(hello),
	})
	s := startServer(t, dir)
	post := func(body string) (int, string) {
		t.Helper()
		resp, err := http.Post("http://"+s.addr+"/_synapse/client/hello", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	array := "[" + strings.Repeat("0,", 5<<20-2) + "0]" // just under 10 MiB (max_request_body): 5 Mi values
	if status, body := post(array); status != 413 || !strings.Contains(body, `"errcode":"M_TOO_LARGE"`) || !strings.Contains(body, "max_request_json_nodes") {
		t.Errorf("10 MiB array: %d %s", status, body)
	}
	if status, body := post(strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100)); status != 400 || !strings.Contains(body, `"errcode":"M_NOT_JSON"`) {
		t.Errorf("100 levels: %d %s", status, body)
	}
	if status, body := post(`{"small":[1,2,3]}`); status != 200 || !strings.Contains(body, `"echo":{"small":[1,2,3]}`) {
		t.Errorf("small body: %d %s", status, body)
	}
	if _, metrics := s.get("/metrics"); !strings.Contains(metrics, `luamods_route_requests_total{code="413",method="POST",route="/_synapse/client/hello"} 1`) ||
		!strings.Contains(metrics, `luamods_route_requests_total{code="400",method="POST",route="/_synapse/client/hello"} 1`) {
		t.Errorf("route metrics lack the 413 and the 400")
	}
}
