package luaapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"luamods/internal/logbuf"
)

// loopbackClient allows the loopback test servers the default blocks.
func loopbackClient() *HTTPClient {
	bl, _ := ParsePrefixes(DefaultBlocklist)
	return NewHTTPClient(HTTPPolicy{Blocklist: bl, Allowlist: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
}

func apiModule(body string) string {
	return `local M = {}
local api
function M.init(a, config) api = a
  a.register_spam_checker_callbacks{ run = function(...) ` + body + ` end }
end
return M`
}

// TestHTTPClientAsyncOnOneState: one state has every call waiting on HTTP
// at once. The server answers none until all of them have arrived, so the
// test passes only if they overlap, however slow the machine.
func TestHTTPClientAsyncOnOneState(t *testing.T) {
	const calls = 100
	var arrived atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if arrived.Add(1) == calls {
			close(release)
		}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		fmt.Fprintf(w, `{"n": %s, "ua": %q}`, r.URL.Query().Get("n"), r.UserAgent())
	}))
	defer srv.Close()
	s, _ := newTestStateTimeout(t, apiModule(`local url, n = ... return api.http_client.get_json(url, {n = n}).n`), &Env{HTTP: loopbackClient()}, 10*time.Minute)
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for i := 0; i < calls; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			got, err := s.Call(context.Background(), "cb:spam_checker.run", srv.URL, i)
			if err == nil && got[0] != int64(i) {
				err = fmt.Errorf("call %d got %v", i, got)
			}
			if err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestHTTPClientErrors(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/missing", func(w http.ResponseWriter, r *http.Request) { http.Error(w, `{"errcode":"M_NOT_FOUND"}`, 404) })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { w.Write(bytes.Repeat([]byte("x"), 2<<20)) })
	mux.HandleFunc("/post", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		json.NewEncoder(w).Encode(map[string]any{"got": body, "method": r.Method, "ct": r.Header.Get("Content-Type"), "x": r.Header.Get("X-Test")})
	})
	mux.HandleFunc("/raw", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Reply", "yes")
		w.Write([]byte("plain"))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	bl, _ := ParsePrefixes(DefaultBlocklist)
	small := NewHTTPClient(HTTPPolicy{Blocklist: bl, Allowlist: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, MaxResponseSize: 1 << 20})
	s, _ := newTestState(t, apiModule(`
    local kind, url = ...
    if kind == "pcall" then
      local ok, err = pcall(api.http_client.get_json, url .. "/missing")
      return ok, err.code, err.body, "went on"
    elseif kind == "post" then
      return api.http_client.post_json_get_json(url .. "/post", {a = 1}, {["X-Test"] = "t"})
    elseif kind == "put" then
      return api.http_client.put_json(url .. "/post", {b = true})
    elseif kind == "raw" then
      local r = api.http_client.request("GET", url .. "/raw")
      return r.status, r.body, r.headers["x-reply"]
    else
      return api.http_client.get_json(url .. "/big")
    end`), &Env{HTTP: small})
	for _, c := range []struct{ kind, want string }{
		{"pcall", `[false,404,"{\"errcode\":\"M_NOT_FOUND\"}\n","went on"]`},
		{"post", `[{"ct":"application/json","got":{"a":1},"method":"POST","x":"t"}]`},
		{"put", `[{"ct":"application/json","got":{"b":true},"method":"PUT","x":""}]`},
		{"raw", `[200,"plain","yes"]`},
	} {
		got, err := s.Call(context.Background(), "cb:spam_checker.run", c.kind, srv.URL)
		if err != nil {
			t.Fatalf("%s: %v", c.kind, err)
		}
		if b, _ := EncodeJSON(got); string(b) != c.want {
			t.Errorf("%s: got %s, want %s", c.kind, b, c.want)
		}
	}
	_, err := s.Call(context.Background(), "cb:spam_checker.run", "big", srv.URL)
	if err == nil || !strings.Contains(err.Error(), "answer over 1048576 bytes") {
		t.Errorf("size cap: %v", err)
	}
}

func TestHTTPBlocklist(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "http://127.0.0.2"+strings.TrimPrefix(srv2URL(r), "http://127.0.0.1")+"/ok", http.StatusFound)
			return
		}
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	bl, _ := ParsePrefixes(DefaultBlocklist)
	byDefault := NewHTTPClient(HTTPPolicy{Blocklist: bl})
	s, _ := newTestState(t, apiModule(`local url = ... local ok, err = pcall(api.http_client.get_json, url) return ok, err.code, err.msg`), &Env{HTTP: byDefault})
	got, err := s.Call(context.Background(), "cb:spam_checker.run", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != false || !strings.Contains(got[2].(string), "blocked by ip_range_blocklist") {
		t.Fatalf("loopback by default: %v", got)
	}
	// Only 127.0.0.1 allowed: a redirect to 127.0.0.2 is checked and refused.
	s2, _ := newTestState(t, apiModule(`local url = ... local ok, err = pcall(api.http_client.get_json, url .. "/redirect") return ok, err.msg`), &Env{HTTP: loopbackClient()})
	got, err = s2.Call(context.Background(), "cb:spam_checker.run", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != false || !strings.Contains(got[1].(string), "127.0.0.2") {
		t.Fatalf("redirect: %v", got)
	}
	for _, a := range []string{"10.1.2.3", "192.168.0.1", "169.254.1.1", "100.64.0.1", "::1", "fd00::1", "fe80::1", "127.0.0.1"} {
		if byDefault.Allowed(netip.MustParseAddr(a)) {
			t.Errorf("%s allowed by default", a)
		}
	}
	if !byDefault.Allowed(netip.MustParseAddr("93.184.216.34")) {
		t.Error("a public address is blocked")
	}
}

func srv2URL(r *http.Request) string { return "http://" + r.Host }

func TestUtilities(t *testing.T) {
	s, _ := newTestState(t, apiModule(`
    local kind = ...
    if kind == "ids" then
      return api.get_qualified_user_id("alice"), api.get_qualified_user_id("@bob:x"), api.is_mine("@a:example.com"), api.is_mine("@a:other"), api.server_name
    elseif kind == "json" then
      local v = api.json.decode('{"a":[1,2,{}],"big":12345678901234567890,"e":[]}')
      return api.json.encode(v), api.json.encode(api.json.array()), type(v.big)
    elseif kind == "regex" then
      local re = api.regex.compile("(?P<user>[a-z]+)@(\\w+)")
      local m = re:search("mail: bob@host!")
      return m.text, m.start, m.groups[2], m.named.user, re:match("mail: bob@host") == nil, re:fullmatch("bob@host") ~= nil, #re:findall("a@b c@d")
    elseif kind == "badregex" then
      return api.regex.compile("(unclosed")
    elseif kind == "errors" then
      return api.errors.FORBIDDEN, api.errors.EXPIRED_ACCOUNT, api.NOT_SPAM
    elseif kind == "time" then
      return api.get_current_time_msec() > 1.7e12
    elseif kind == "print" then
      print("hello", 42)
      api.log.warn("formatted %s=%d", "x", 5)
    end`), &Env{Logger: slog.New(slog.NewTextHandler(&testLog, nil))})
	for _, c := range []struct{ kind, want string }{
		{"ids", `["@alice:example.com","@bob:x",true,false,"example.com"]`},
		{"json", `["{\"a\":[1,2,{}],\"big\":\"12345678901234567890\",\"e\":[]}","[]","string"]`},
		{"regex", `["bob@host",7,"host","bob",true,true,2]`},
		{"errors", `["M_FORBIDDEN","ORG_MATRIX_EXPIRED_ACCOUNT","NOT_SPAM"]`},
		{"time", `[true]`},
	} {
		got, err := s.Call(context.Background(), "cb:spam_checker.run", c.kind)
		if err != nil {
			t.Fatalf("%s: %v", c.kind, err)
		}
		if b, _ := EncodeJSON(got); string(b) != c.want {
			t.Errorf("%s: got %s, want %s", c.kind, b, c.want)
		}
	}
	if _, err := s.Call(context.Background(), "cb:spam_checker.run", "badregex"); err == nil || !strings.Contains(err.Error(), `"(unclosed"`) {
		t.Errorf("bad pattern: %v", err)
	}
	if _, err := s.Call(context.Background(), "cb:spam_checker.run", "print"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`msg="hello\t42"`, `msg="formatted x=5"`, "module=test", "where=test.lua:"} {
		if !strings.Contains(testLog.String(), want) {
			t.Errorf("log lacks %q: %s", want, testLog.String())
		}
	}
}

var testLog logbuf.Buffer

func TestBackgroundCalls(t *testing.T) {
	s, _ := newTestState(t, apiModule(`
    local kind = ...
    if kind == "start" then
      ticks, fired = 0, false
      loop = api.looping_background_call(function(step) ticks = ticks + step end, 10, 1)
      later = api.delayed_background_call(20, function() fired = true end)
      never = api.delayed_background_call(20, function() error("cancelled call ran") end)
      never:cancel()
    elseif kind == "stop" then
      loop:stop()
      return ticks, fired
    elseif kind == "fired" then
      return fired
    else
      return ticks
    end`), nil)
	ctx := context.Background()
	if _, err := s.Call(ctx, "cb:spam_checker.run", "start"); err != nil {
		t.Fatal(err)
	}
	// Wait (polling, however slow the machine) for three ticks and the
	// delayed call.
	for {
		got, err := s.Call(ctx, "cb:spam_checker.run", "read")
		if err != nil {
			t.Fatal(err)
		}
		if got[0].(int64) >= 3 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	var got []any
	for {
		var err error
		if got, err = s.Call(ctx, "cb:spam_checker.run", "fired"); err != nil {
			t.Fatal(err)
		}
		if got[0] == true {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	got, err := s.Call(ctx, "cb:spam_checker.run", "stop")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	after, _ := s.Call(ctx, "cb:spam_checker.run", "read")
	if after[0] != got[0] {
		t.Fatalf("loop ran after stop: %v then %v", got[0], after[0])
	}
}

type fakeHost struct {
	mu    sync.Mutex
	calls []string
}

func (h *fakeHost) CallHost(ctx context.Context, method string, args []any) (any, error) {
	h.mu.Lock()
	h.calls = append(h.calls, fmt.Sprint(method, args))
	h.mu.Unlock()
	switch method {
	case "check_user_exists":
		return args[0], nil
	case "create_room":
		return Tuple{"!new:example.com", nil}, nil
	}
	return nil, errors.New("unsupported")
}

func TestHostMethods(t *testing.T) {
	src := apiModule(`
    local kind = ...
    if kind == "exists" then return api.check_user_exists("@a:example.com")
    elseif kind == "room" then return api.create_room("@a:example.com", {preset = "private_chat"})
    elseif kind == "fail" then return pcall(api.account_data_manager.get_global, "@a:x", "t")
    end`)
	host := &fakeHost{}
	s, _ := newTestState(t, src, &Env{Host: host})
	got, err := s.Call(context.Background(), "cb:spam_checker.run", "exists")
	if err != nil || got[0] != "@a:example.com" {
		t.Fatalf("exists: %v %v", got, err)
	}
	got, err = s.Call(context.Background(), "cb:spam_checker.run", "room")
	if b, _ := EncodeJSON(got); err != nil || string(b) != `["!new:example.com",null]` {
		t.Fatalf("create_room: %s %v", b, err)
	}
	got, _ = s.Call(context.Background(), "cb:spam_checker.run", "fail")
	if got[0] != false || !strings.Contains(got[1].(string), "account_data_manager.get_global: unsupported") {
		t.Fatalf("host error: %v", got)
	}
	noHost, _ := newTestState(t, src, nil)
	_, err = noHost.Call(context.Background(), "cb:spam_checker.run", "exists")
	if err == nil || !strings.Contains(err.Error(), "check_user_exists: no homeserver attached") {
		t.Fatalf("no host: %v", err)
	}
}

func TestRequireFromOwnFolder(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "lib"), 0o755)
	os.WriteFile(filepath.Join(dir, "lib", "util.lua"), []byte(`loads = (loads or 0) + 1 return {double = function(x) return 2 * x end}`), 0o644)
	os.WriteFile(filepath.Join(dir, "broken.lua"), []byte(`error("broken helper")`), 0o644)
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret.lua"), []byte(`return "outside"`), 0o644)
	os.Symlink(filepath.Join(outside, "secret.lua"), filepath.Join(dir, "escape.lua"))
	os.Symlink(outside, filepath.Join(dir, "elsewhere"))
	os.Symlink(filepath.Join(dir, "lib", "util.lua"), filepath.Join(dir, "alias.lua"))
	s, err := NewState(Options{Module: "m", Dir: dir, Sandbox: true, Env: &Env{Catalog: testCatalog{"spam_checker"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	proto, _ := Compile(apiModule(`local kind = ...
      if kind == "ok" then local u = require("lib.util") require("lib.util") return u.double(21), loads end
      if kind == "missing" then return require("nope") end
      if kind == "alias" then return require("alias").double(2) end
      if kind == "escape" then return require("escape") end
      if kind == "elsewhere" then return require("elsewhere.secret") end
      return require("broken")`), "m.lua")
	ctx := context.Background()
	if err := s.Load(ctx, &Chunk{proto: proto}); err != nil {
		t.Fatal(err)
	}
	_ = s.ParseConfig(ctx, nil)
	if err := s.Init(ctx, &recorder{}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Call(ctx, "cb:spam_checker.run", "ok")
	if err != nil || fmt.Sprint(got) != "[42 1]" {
		t.Fatalf("require: %v %v", got, err)
	}
	if _, err := s.Call(ctx, "cb:spam_checker.run", "missing"); err == nil || !strings.Contains(err.Error(), `module "nope" not found`) {
		t.Errorf("missing: %v", err)
	}
	if _, err := s.Call(ctx, "cb:spam_checker.run", "broken"); err == nil || !strings.Contains(err.Error(), "broken.lua:1: broken helper") {
		t.Errorf("broken: %v", err)
	}
	// Symbolic links: one inside the folder works, one out of it is refused.
	if got, err := s.Call(ctx, "cb:spam_checker.run", "alias"); err != nil || got[0] != int64(4) {
		t.Errorf("a link inside the folder: %v %v", got, err)
	}
	for _, kind := range []string{"escape", "elsewhere"} {
		if _, err := s.Call(ctx, "cb:spam_checker.run", kind); err == nil || !strings.Contains(err.Error(), "outside the module's folder") {
			t.Errorf("%s: err = %v, want outside the module's folder", kind, err)
		}
	}
}

func TestValueConversionRules(t *testing.T) {
	s, _ := newTestState(t, apiModule(`local v = ... return v`), nil)
	for _, c := range []struct {
		in   any
		want string
	}{
		{map[string]any{"a": []any{}, "b": map[string]any{}}, `[{"a":[],"b":{}}]`},
		{json.Number("9007199254740993"), `["9007199254740993"]`},
		{int64(1) << 60, `["1152921504606846976"]`},
		{[]any{1, "x", nil}, `[[1,"x"]]`},
		{1.5, `[1.5]`},
	} {
		got, err := s.Call(context.Background(), "cb:spam_checker.run", c.in)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := EncodeJSON(got); string(b) != c.want {
			t.Errorf("%v: got %s, want %s", c.in, b, c.want)
		}
	}
	bad, _ := newTestState(t, apiModule(`local kind = ... if kind == "fn" then return {f = print} elseif kind == "cycle" then local t = {} t.t = t return t else return 0/0 end`), nil)
	for kind, want := range map[string]string{"fn": "cannot leave Lua", "cycle": "too deeply", "nan": "no JSON form"} {
		if _, err := bad.Call(context.Background(), "cb:spam_checker.run", kind); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", kind, err)
		}
	}
	deep := any("leaf")
	for i := 0; i < MaxDepth+2; i++ {
		deep = []any{deep}
	}
	if _, err := s.Call(context.Background(), "cb:spam_checker.run", deep); !errors.Is(err, ErrTooDeep) {
		t.Errorf("deep argument: %v", err)
	}
}
