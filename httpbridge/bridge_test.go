package httpbridge

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"luamods/engine"
	"luamods/internal/logbuf"
)

// testServer runs luamods.yaml from files on a real echo server on a
// loopback port and returns its base URL.
func testServer(t *testing.T, files map[string]string) (base string, eng *engine.Engine, logs *logbuf.Buffer) {
	t.Helper()
	return testServerWith(t, files, engine.Options{})
}

// testServerWith is testServer with engine options (its ConfigPath and
// Logger are set here).
func testServerWith(t *testing.T, files map[string]string, opts engine.Options) (base string, eng *engine.Engine, logs *logbuf.Buffer) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	logs = &logbuf.Buffer{}
	opts.ConfigPath = filepath.Join(dir, "luamods.yaml")
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	eng, err := engine.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(New(eng))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = ln
	go srv.Start("")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = Shutdown(ctx, srv)
		eng.Close()
	})
	return "http://" + ln.Addr().String(), eng, logs
}

func do(t *testing.T, method, url, body string, header ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

const routesModule = `local M = {}
function M.init(api, config)
  api.register_web_resource("/_synapse/client/echo", function(r)
    return {status = 200, json = {method = r.method, path = r.path, subpath = r.subpath, q = r.query.q,
      all = r.query_all.q, h = r.headers["x-test"], body = r.body, json = r.json, rid = r.request_id ~= "", remote = r.remote_addr ~= ""}}
  end)
  api.register_web_resource("/_synapse/client/methods", {
    GET = function() return {status = 200, body = "got", headers = {["Content-Type"] = "text/plain", ["X-Mod"] = "1"}} end,
    post = function(r) return {status = 201, json = r.json} end,
  })
  api.register_web_resource("/_synapse/client/errors", function(r)
    local kind = r.subpath
    if kind == "/table" then error({status = 429, errcode = "M_LIMIT_EXCEEDED", error = "slow down", retry_after_ms = 500}) end
    if kind == "/plain" then error("kaboom") end
    if kind == "/badreturn" then return 42 end
    if kind == "/badheader" then return {status = 200, headers = {["X-Bad"] = "a\r\nSet-Cookie: x=y"}, body = "x"} end
    if kind == "/slow" then while true do end end
    return {status = 204}
  end)
  api.register_web_resource("/_synapse/client/shared", function() return {status = 200, body = "first"} end)
end
return M`

const secondModule = `local M = {}
function M.init(api)
  api.register_web_resource("/_synapse/client/shared", function() return {status = 200, body = "second"} end)
  api.register_spam_checker_callbacks{ user_may_invite = function(a, b, room)
    if room == "!bad:x" then return api.errors.FORBIDDEN end
    if room == "!crash:x" then error("crashed") end
    if room == "!limited:x" then error({status = 429, errcode = "M_LIMIT_EXCEEDED", error = "slow down"}) end
    return api.NOT_SPAM
  end }
end
return M`

func routesConfig() map[string]string {
	return map[string]string{
		"luamods.yaml": "server_name: example.com\nadmin_token: s3cret\nmax_request_body: 1KiB\nmodules:\n  - module: routes.lua\n    timeout: 300ms\n  - module: second.lua\n",
		"routes.lua":   routesModule,
		"second.lua":   secondModule,
	}
}

func TestWebResources(t *testing.T) {
	base, _, logs := testServer(t, routesConfig())
	cases := []struct {
		name, method, path, body string
		header                   []string
		status                   int
		want                     string // substring of the body
	}{
		{"query headers json", "POST", "/_synapse/client/echo?q=1&q=2", `{"k":[1,2]}`, []string{"X-Test", "hv", "Content-Type", "application/json"}, 200,
			`{"all":["1","2"],"body":"{\"k\":[1,2]}","h":"hv","json":{"k":[1,2]},"method":"POST","path":"/_synapse/client/echo","q":"1","remote":true,"rid":true,"subpath":""}`},
		{"raw body", "PUT", "/_synapse/client/echo", "not json", []string{"Content-Type", "text/plain"}, 200, `"body":"not json"`},
		{"subpath", "GET", "/_synapse/client/echo/a/b", "", nil, 200, `"subpath":"/a/b"`},
		{"subpath cleaned", "GET", "/_synapse/client/echo/a/%2e%2e/b/./c", "", nil, 200, `"subpath":"/b/c"`},
		{"path cleaned", "GET", "/_synapse/client/x/%2e%2e/echo//b", "", nil, 200, `"path":"/_synapse/client/echo/b"`},
		{"no climbing out", "GET", "/_synapse/client/echo/%2e%2e/%2e%2e/admin/v1/users", "", nil, 404, `"errcode":"M_UNRECOGNIZED"`},
		{"not below", "GET", "/_synapse/client/echoes", "", nil, 404, `"errcode":"M_UNRECOGNIZED"`},
		{"method table GET", "GET", "/_synapse/client/methods", "", nil, 200, "got"},
		{"method table lower-case key", "POST", "/_synapse/client/methods", `{"x":1}`, nil, 201, `{"x":1}`},
		{"405", "DELETE", "/_synapse/client/methods", "", nil, 405, "M_UNRECOGNIZED"},
		{"error table", "GET", "/_synapse/client/errors/table", "", nil, 429, `{"errcode":"M_LIMIT_EXCEEDED","error":"slow down","retry_after_ms":500}`},
		{"plain error", "GET", "/_synapse/client/errors/plain", "", nil, 500, `{"errcode":"M_UNKNOWN","error":"Internal server error"}`},
		{"bad return", "GET", "/_synapse/client/errors/badreturn", "", nil, 500, "Internal server error"},
		{"header injection", "GET", "/_synapse/client/errors/badheader", "", nil, 500, "Internal server error"},
		{"timeout", "GET", "/_synapse/client/errors/slow", "", nil, 500, "Internal server error"},
		{"no content", "GET", "/_synapse/client/errors", "", nil, 204, ""},
		{"413", "POST", "/_synapse/client/echo", strings.Repeat("x", 2048), nil, 413, "M_TOO_LARGE"},
		{"first module wins", "GET", "/_synapse/client/shared", "", nil, 200, "first"},
		{"unknown path", "GET", "/nothing", "", nil, 404, "M_UNRECOGNIZED"},
		{"health", "GET", "/health", "", nil, 200, "OK"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, h, body := do(t, c.method, base+c.path, c.body, c.header...)
			if status != c.status || !strings.Contains(body, c.want) {
				t.Fatalf("%s %s = %d %s, want %d containing %s", c.method, c.path, status, body, c.status, c.want)
			}
			if c.name == "405" && h.Get("Allow") != "GET, POST" {
				t.Errorf("Allow = %q", h.Get("Allow"))
			}
			if c.name == "plain error" && h.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id on a 500")
			}
			if c.name == "method table GET" && h.Get("X-Mod") != "1" {
				t.Errorf("X-Mod = %q", h.Get("X-Mod"))
			}
		})
	}
	for _, want := range []string{
		"first in modules: wins", "path=/_synapse/client/shared", "module=second.lua", "serving=routes.lua",
		"web resource failed", "routes.lua:14", "kaboom", "request_id=",
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

func TestAdminAPI(t *testing.T) {
	base, _, _ := testServer(t, routesConfig())
	auth := []string{"Authorization", "Bearer s3cret"}
	for _, c := range []struct {
		name, method, path, body string
		header                   []string
		status                   int
		want                     string
	}{
		{"no token", "POST", "/_luamods/v1/invoke/spam_checker/user_may_invite", `["@a:x","@b:x","!bad:x"]`, nil, 401, "M_MISSING_TOKEN"},
		{"wrong token", "POST", "/_luamods/v1/invoke/spam_checker/user_may_invite", `[]`, []string{"Authorization", "Bearer nope"}, 401, "M_UNKNOWN_TOKEN"},
		{"invoke", "POST", "/_luamods/v1/invoke/spam_checker/user_may_invite", `["@a:x","@b:x","!bad:x"]`, auth, 200, `{"result":["M_FORBIDDEN",{}]}`},
		{"invoke allow", "POST", "/_luamods/v1/invoke/spam_checker/user_may_invite", `["@a:x","@b:x","!ok:x"]`, auth, 200, `{"result":"NOT_SPAM"}`},
		{"invoke none registered", "POST", "/_luamods/v1/invoke/account_validity/is_user_expired", `["@a:x"]`, auth, 200, `{"result":null}`},
		{"invoke failing", "POST", "/_luamods/v1/invoke/spam_checker/user_may_invite", `["@a:x","@b:x","!crash:x"]`, auth, 500, `second.lua:6: crashed`},
		{"invoke raising an error table", "POST", "/_luamods/v1/invoke/spam_checker/user_may_invite", `["@a:x","@b:x","!limited:x"]`, auth, 429,
			`{"callback":"spam_checker.user_may_invite","errcode":"M_LIMIT_EXCEEDED","error":"slow down","module":"second.lua"}`},
		{"invoke unknown", "POST", "/_luamods/v1/invoke/spam_checker/nope", `[]`, auth, 404, "Unknown callback"},
		{"invoke too many arguments", "POST", "/_luamods/v1/invoke/spam_checker/user_may_invite", `["@a:x","@b:x","!ok:x",1,2]`, auth, 400,
			`"errcode":"M_INVALID_PARAM","error":"spam_checker.user_may_invite takes 3 arguments`},
		{"invoke bad json", "POST", "/_luamods/v1/invoke/spam_checker/user_may_invite", `{"a":1}`, auth, 400, "JSON array"},
		{"modules", "GET", "/_luamods/v1/modules", "", auth, 200, `"callbacks":["spam_checker.user_may_invite"]`},
		{"reload unchanged", "POST", "/_luamods/v1/reload", "", auth, 200, `"Unchanged":true`},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, _, body := do(t, c.method, base+c.path, c.body, c.header...)
			if status != c.status || !strings.Contains(body, c.want) {
				t.Fatalf("%d %s, want %d containing %s", status, body, c.status, c.want)
			}
		})
	}
}

func TestAdminAPIOffWithoutToken(t *testing.T) {
	files := routesConfig()
	files["luamods.yaml"] = strings.Replace(files["luamods.yaml"], "admin_token: s3cret\n", "", 1)
	base, _, _ := testServer(t, files)
	status, _, body := do(t, "GET", base+"/_luamods/v1/modules", "", "Authorization", "Bearer ")
	if status != 404 || !strings.Contains(body, "admin API is off") {
		t.Fatalf("%d %s", status, body)
	}
}

func TestMetricsCountCalls(t *testing.T) {
	base, _, _ := testServer(t, routesConfig())
	for i := 0; i < 3; i++ {
		do(t, "GET", base+"/_synapse/client/methods", "")
	}
	do(t, "GET", base+"/_synapse/client/errors/plain", "")
	do(t, "POST", base+"/_luamods/v1/invoke/spam_checker/user_may_invite", `["@a:x","@b:x","!ok:x"]`, "Authorization", "Bearer s3cret")
	_, _, text := do(t, "GET", base+"/metrics", "")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	value := func(name string, labels map[string]string) float64 {
		for _, m := range families[name].GetMetric() {
			match := true
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					match = false
				}
			}
			if match {
				if m.GetCounter() != nil {
					return m.GetCounter().GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
		return -1
	}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"luamods_route_requests_total", map[string]string{"route": "/_synapse/client/methods", "method": "GET", "code": "200"}, 3},
		{"luamods_route_requests_total", map[string]string{"route": "/_synapse/client/errors", "code": "500"}, 1},
		{"luamods_callback_calls_total", map[string]string{"callback": "spam_checker.user_may_invite", "module": "second.lua"}, 1},
		{"luamods_generation", nil, 1},
		{"luamods_build_info", nil, 1},
	}
	for _, c := range checks {
		if got := value(c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if _, ok := families["luamods_route_duration_seconds"]; !ok {
		t.Error("no route latency histogram")
	}
}

func TestInflightRequestFinishesOnShutdown(t *testing.T) {
	files := map[string]string{
		"luamods.yaml": "modules:\n  - module: slow.lua\n",
		"slow.lua": `local M = {} function M.init(api)
  api.register_web_resource("/_synapse/client/slow", function() api.sleep(0.3) return {status = 200, body = "done"} end)
end return M`,
	}
	dir := t.TempDir()
	for n, c := range files {
		os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644)
	}
	eng, err := engine.New(context.Background(), engine.Options{ConfigPath: filepath.Join(dir, "luamods.yaml"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	srv := NewServer(New(eng))
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv.Listener = ln
	go srv.Start("")
	result := make(chan string, 1)
	go func() {
		resp, err := http.Get(fmt.Sprintf("http://%s/_synapse/client/slow", ln.Addr()))
		if err != nil {
			result <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		result <- string(b)
	}()
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := Shutdown(ctx, srv); err != nil {
		t.Fatal(err)
	}
	if got := <-result; got != "done" {
		t.Fatalf("in-flight request got %q", got)
	}
}
