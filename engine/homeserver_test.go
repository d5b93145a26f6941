package engine

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// stateServer is a homeserver that answers room state and counts the reads.
type stateServer struct {
	mu    sync.Mutex
	reads int
}

func (s *stateServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/state") || r.URL.Query().Get("user_id") != "@alice:example.com" || r.Header.Get("Authorization") != "Bearer as-token" {
		http.Error(w, `{"errcode":"M_FORBIDDEN","error":"unexpected request"}`, http.StatusForbidden)
		return
	}
	s.mu.Lock()
	s.reads++
	s.mu.Unlock()
	w.Write([]byte(`[{"type":"m.room.create","state_key":"","sender":"@alice:example.com","content":{}}]`))
}

func (s *stateServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

const registrationFile = "id: luamods\nurl: http://127.0.0.1:9\nas_token: as-token\nhs_token: hs-token\nsender_localpart: luamods\n"

// TestAppserviceFeedDelivers: events become on_new_event in modules order,
// with the state map; errors are logged with file:line; the state is read
// only when a module wants it.
func TestAppserviceFeedDelivers(t *testing.T) {
	hs := &stateServer{}
	srv := httptest.NewServer(hs)
	defer srv.Close()
	config := "server_name: example.com\nhomeserver: {url: " + srv.URL + ", registration: reg.yaml}\nmodules:\n"
	quiet := "local M = {} function M.init(api) end return M"
	eng, logs, err := startEngine(t, map[string]string{"luamods.yaml": config + "  - module: quiet.lua\n", "reg.yaml": registrationFile, "quiet.lua": quiet})
	if err != nil {
		t.Fatal(err)
	}
	feed := appserviceFeed{eng}
	if feed.HSToken() != "hs-token" {
		t.Fatalf("hs_token %q", feed.HSToken())
	}
	event := map[string]any{"type": "m.room.message", "event_id": "$1", "room_id": "!r:example.com", "sender": "@alice:example.com", "content": map[string]any{}}
	feed.Deliver(context.Background(), event)
	if hs.count() != 0 {
		t.Fatalf("the state was read for no on_new_event")
	}

	listener := func(name string, fail bool) string {
		body := `api.log.info("` + name + ` saw %s with create by %s", event.event_id, state.m_create)`
		if fail {
			body = "error('" + name + " broke')"
		}
		return "local M = {}\nfunction M.init(api)\n  api.register_third_party_rules_callbacks{ on_new_event = function(event, state_events)\n    local state = {m_create = state_events['m.room.create'][''].sender}\n    " + body + "\n  end }\nend\nreturn M\n"
	}
	rewrite(t, eng, "luamods.yaml", config+"  - module: first.lua\n  - module: broken.lua\n  - module: last.lua\n")
	rewrite(t, eng, "first.lua", listener("first", false))
	rewrite(t, eng, "broken.lua", listener("broken", true))
	rewrite(t, eng, "last.lua", listener("last", false))
	if _, err := eng.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	feed.Deliver(context.Background(), event)
	if hs.count() != 1 {
		t.Fatalf("state read %d times for one event", hs.count())
	}
	out := logs.String()
	first := strings.Index(out, "first saw $1 with create by @alice:example.com")
	broken := strings.Index(out, "broken.lua:5: broken broke")
	last := strings.Index(out, "last saw $1 with create by @alice:example.com")
	if first < 0 || broken < 0 || last < 0 || !(first < broken && broken < last) {
		t.Fatalf("modules order, the error's file:line:\n%s", out)
	}
}

// TestHomeserverConfigIsChecked: a missing registration is a config error
// at its path, and without homeserver: the methods have no host.
func TestHomeserverConfigIsChecked(t *testing.T) {
	_, _, err := startEngine(t, map[string]string{"luamods.yaml": "server_name: example.com\nhomeserver: {url: 'http://127.0.0.1:9', registration: missing.yaml}\nmodules: []\n"})
	if err == nil || !strings.Contains(err.Error(), "at 'homeserver.registration'") || !strings.Contains(err.Error(), "(write it with: luamods registration -c ") || !strings.Contains(err.Error(), "luamods.yaml)") {
		t.Fatalf("got %v", err)
	}
	eng, _, err := startEngine(t, map[string]string{"luamods.yaml": "modules: []\n"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.moduleHost().CallHost(context.Background(), "get_room_state", []any{"!r:x"}); err == nil || !strings.Contains(err.Error(), "no homeserver attached") {
		t.Fatalf("got %v", err)
	}
	if appserviceFeed.HSToken(appserviceFeed{eng}) != "" {
		t.Fatal("an hs_token without a homeserver")
	}
	// A Host of its own (luamods test's fake) replaces homeserver: entirely.
	dir := writeFiles(t, map[string]string{"luamods.yaml": "server_name: example.com\nhomeserver: {url: 'http://127.0.0.1:9', registration: missing.yaml}\nmodules: []\n"})
	own, err := New(context.Background(), Options{ConfigPath: filepath.Join(dir, "luamods.yaml"), Host: hostFunc(func(context.Context, string, []any) (any, error) { return "own", nil })})
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	if got, _ := own.moduleHost().CallHost(context.Background(), "get_room_state", nil); got != "own" {
		t.Fatalf("got %v", got)
	}
}

// hostFunc is a Host made of one function.
type hostFunc func(ctx context.Context, method string, args []any) (any, error)

func (f hostFunc) CallHost(ctx context.Context, method string, args []any) (any, error) {
	return f(ctx, method, args)
}

// TestReloadRereadsTheRegistration: new tokens in the registration file
// take effect on reload, though luamods.yaml did not change.
func TestReloadRereadsTheRegistration(t *testing.T) {
	eng, _, err := startEngine(t, map[string]string{
		"luamods.yaml": "server_name: example.com\nhomeserver: {url: 'http://127.0.0.1:9', registration: reg.yaml}\nmodules: []\n",
		"reg.yaml":     registrationFile,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if report, err := eng.Reload(ctx); err != nil || !report.Unchanged {
		t.Fatalf("nothing changed: %+v %v", report, err)
	}
	rewrite(t, eng, "reg.yaml", strings.Replace(registrationFile, "hs_token: hs-token", "hs_token: new-hs-token", 1))
	if report, err := eng.Reload(ctx); err != nil || report.Unchanged {
		t.Fatalf("the registration changed: %+v %v", report, err)
	}
	if got := (appserviceFeed{eng}).HSToken(); got != "new-hs-token" {
		t.Fatalf("hs_token %q after the reload", got)
	}
}
