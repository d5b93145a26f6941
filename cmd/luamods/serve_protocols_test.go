package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestServeSpeaksSynapseProtocols runs the shipped synapse_antispam.lua in
// a real serve, sends what synapse-http-antispam sends, and turns the REST
// password provider's endpoint on with a reload.
func TestServeSpeaksSynapseProtocols(t *testing.T) {
	script, err := os.ReadFile("../../scripts/synapse_antispam.lua")
	if err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	config := "listen: " + addr + "\nhttp_antispam:\n  authorization_path: antispam.token\nmodules:\n" +
		"  - module: synapse_antispam.lua\n    config: {invite_blocked_servers: [spam.example]}\n"
	dir := writeDir(t, map[string]string{
		"luamods.yaml":         config,
		"antispam.token":       "spam-token\n",
		"synapse_antispam.lua": string(script),
	})
	s := startServer(t, dir, "-c", "luamods.yaml")
	if !strings.Contains(s.log(), "homeserver protocol off: no rest_auth section") {
		t.Errorf("the log does not say rest_auth is off:\n%s", s.log())
	}
	post := func(path, body string, header ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+addr+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	bearer := []string{"Authorization", "Bearer spam-token"}
	if code, body := post("/_luamods/v1/http_antispam/ping", `{"id":"AbCdEfGh"}`, bearer...); code != 200 || body != `{"id":"AbCdEfGh","status":"ok"}` {
		t.Errorf("ping: %d %s", code, body)
	}
	invite := `{"inviter":"@bot:spam.example","invitee":"@me:example.com","room_id":"!r:example.com"}`
	if code, body := post("/_luamods/v1/http_antispam/user_may_invite", invite, bearer...); code != 403 ||
		body != `{"errcode":"M_FORBIDDEN","error":"Invites from spam.example are blocked on this server"}` {
		t.Errorf("blocked invite: %d %s", code, body)
	}
	if code, _ := post("/_luamods/v1/http_antispam/user_may_invite", invite); code != 401 {
		t.Errorf("without the token: %d", code)
	}
	if code, _ := post("/_matrix-internal/identity/v1/check_credentials", `{"user":{"id":"@a:x","password":"p"}}`); code != 404 {
		t.Errorf("rest_auth before it is configured: %d", code)
	}
	os.WriteFile(filepath.Join(dir, "luamods.yaml"), []byte(config+"rest_auth: {authorization: rest-token}\n"), 0o644)
	s.signal(syscall.SIGHUP)
	s.waitLog("msg=reloaded", 1)
	s.waitLog("homeserver protocol on", 3) // http_antispam at start; both after the reload
	// The provider sends the secret as the password of its endpoint's userinfo.
	code, body := post("/_matrix-internal/identity/v1/check_credentials", `{"user":{"id":"@a:x","password":"p"}}`, "Authorization", "Basic bHVhbW9kczpyZXN0LXRva2Vu")
	if code != 200 || body != `{"auth":{"success":false}}` {
		t.Errorf("rest_auth after the reload: %d %s", code, body)
	}
}
