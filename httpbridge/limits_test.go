package httpbridge

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"luamods/engine"
)

// holdGate is a Go function the module calls (host.gate:Hold()) that holds
// its state until the test releases it: calls to that state then queue.
type holdGate struct {
	entered chan struct{}
	release chan struct{}
}

func (g *holdGate) Hold() {
	g.entered <- struct{}{}
	<-g.release
}

const busyAdminToken = "busy-admin"

const busyModule = `local M = {}
function M.init(api)
  api.register_web_resource("/_synapse/client/busy", function(r)
    if r.query.hold then host.gate:Hold() end
    return {status = 200, body = "ok"}
  end)
  api.register_spam_checker_callbacks{ user_may_invite = function() return api.NOT_SPAM end }
  api.register_password_auth_provider_callbacks{ auth_checkers = {
    ["m.login.password"] = { fields = { "password" }, check = function() return nil end },
  } }
end
return M`

// TestProtocolEndpointsAnswer503WhenTheQueueIsFull: with the module's only
// state held and max_queued_calls calls waiting, the host protocol
// endpoints answer at once with 503 and Retry-After: 1 (http_antispam in
// text/plain, so that the Synapse module's fail_open decides); after the
// release, the waiting calls complete.
func TestProtocolEndpointsAnswer503WhenTheQueueIsFull(t *testing.T) {
	gate := &holdGate{entered: make(chan struct{}), release: make(chan struct{})}
	cfg := "server_name: example.com\nadmin_token: " + busyAdminToken + "\nhttp_antispam: {authorization: " + antispamToken + "}\nrest_auth: {authorization: " + restSecret + "}\n" +
		"modules:\n  - module: busy.lua\n    timeout: 1h\n    max_queued_calls: 1\n"
	base, eng, _ := testServerWith(t, map[string]string{"luamods.yaml": cfg, "busy.lua": busyModule},
		engine.Options{Expose: map[string]any{"gate": gate}})
	var once sync.Once
	release := func() { once.Do(func() { close(gate.release) }) }
	t.Cleanup(release) // before the engine closes, whatever failed
	done := make(chan int, 2)
	get := func(query string) {
		go func() { // not do: t.Fatal belongs to the test's goroutine
			resp, err := http.Get(base + "/_synapse/client/busy" + query)
			if err != nil {
				done <- 0
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
	}
	get("?hold=1")
	<-gate.entered
	get("")
	state := eng.Current().Modules[0].States()[0]
	for end := time.Now().Add(time.Minute); state.Queued() != 1; time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the call never queued")
		}
	}

	status, header, body := post(t, base+"/_luamods/v1/http_antispam/user_may_invite", map[string]any{"inviter": "@a:x", "invitee": "@b:x", "room_id": "!r:x"})
	if status != http.StatusServiceUnavailable || header.Get("Retry-After") != "1" || !strings.HasPrefix(header.Get("Content-Type"), "text/plain") ||
		!strings.Contains(body, "overloaded (max_queued_calls)") {
		t.Errorf("http_antispam: %d %v %q", status, header, body)
	}
	status, header, body = do(t, "POST", base+"/_luamods/v1/invoke/spam_checker/user_may_invite", `["@a:x", "@b:x", "!r:x"]`, "Authorization", "Bearer "+busyAdminToken)
	if status != http.StatusServiceUnavailable || header.Get("Retry-After") != "1" || !strings.Contains(body, `"errcode":"M_LIMIT_EXCEEDED"`) {
		t.Errorf("invoke: %d %v %q", status, header, body)
	}
	// auth_checkers is fail-open, as in Synapse: an overloaded checker is
	// skipped like a failing one, and the login is refused.
	status, _, body = do(t, "POST", base+restAuthPath, `{"user":{"id":"@bob:example.com","password":"x"}}`, "Authorization", "Bearer "+restSecret)
	if status != http.StatusOK || !strings.Contains(body, `{"auth":{"success":false}}`) {
		t.Errorf("rest_auth: %d %q", status, body)
	}

	release()
	for range 2 {
		if status := <-done; status != http.StatusOK {
			t.Errorf("a held or queued request: %d", status)
		}
	}
}
