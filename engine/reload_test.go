package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// versioned is a module whose answer, and background ticks, carry a version.
func versioned(version string) string {
	return `local M = {}
count = count or 0
function M.save() return {count = count} end
function M.restore(state) count = state.count end
function M.init(api, config)
  api.looping_background_call(function() api.log.info("tick ` + version + `") end, 10)
  api.register_test_callbacks{ run = function(cmd, key)
    count = count + 1
    if cmd == "slow" then api.sleep(0.3) end
    return "` + version + `:" .. count
  end }
end
return M`
}

const steady = `local M = {}
seen = 0
function M.init(api)
  local cached = api.cached(function(k) seen = seen + 1 return seen end)
  api.register_web_resource("/_synapse/client/steady", function() return {status = 200, body = tostring(cached("k"))} end)
  api.register_spam_checker_callbacks{ user_may_invite = function() seen = seen + 100 return api.NOT_SPAM end }
end
return M`

func reloadFiles() map[string]string {
	return map[string]string{
		"luamods.yaml": "modules:\n  - module: steady.lua\n  - module: app.lua\n",
		"steady.lua":   steady,
		"app.lua":      versioned("v1"),
	}
}

func run(t *testing.T, e *Engine, cmd string) string {
	t.Helper()
	res, err := e.Invoke(context.Background(), "test.run", cmd)
	if err != nil {
		t.Fatal(err)
	}
	return res.(string)
}

func rewrite(t testing.TB, e *Engine, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(filepath.Dir(e.opts.ConfigPath), name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReloadSwapsChangedModulesAndKeepsTheRest(t *testing.T) {
	eng, logs, err := startEngine(t, reloadFiles())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if got := run(t, eng, "x"); got != "v1:1" {
		t.Fatalf("first call %q", got)
	}
	steadyBefore := eng.Current().Module("steady.lua")
	if _, err := eng.Invoke(ctx, "spam_checker.user_may_invite", "a", "b", "c"); err != nil {
		t.Fatal(err)
	}

	// A call in flight across the swap finishes on the old code.
	inflight := make(chan string)
	go func() {
		res, _ := eng.Invoke(ctx, "test.run", "slow")
		inflight <- res.(string)
	}()
	time.Sleep(50 * time.Millisecond)

	rewrite(t, eng, "app.lua", versioned("v2"))
	report, err := eng.Reload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(report.Changed, ",") != "app.lua" || strings.Join(report.Kept, ",") != "steady.lua" {
		t.Fatalf("report: %s", report)
	}
	// M.save() of v1 reached M.restore() of v2: the count goes on (1 call + the slow one).
	if got := run(t, eng, "x"); got != "v2:3" {
		t.Fatalf("after reload %q", got)
	}
	if got := <-inflight; got != "v1:2" {
		t.Fatalf("in-flight call answered %q, want v1's answer", got)
	}
	// The unchanged module is the same module, globals included.
	if eng.Current().Module("steady.lua") != steadyBefore {
		t.Fatal("unchanged module was rebuilt")
	}
	// Old background calls stop once the old generation is drained.
	time.Sleep(100 * time.Millisecond)
	n := strings.Count(logs.String(), "tick v1")
	time.Sleep(100 * time.Millisecond)
	if strings.Count(logs.String(), "tick v1") != n {
		t.Fatal("v1's looping call still runs after the reload")
	}
	if !strings.Contains(logs.String(), "tick v2") {
		t.Fatal("v2's looping call does not run")
	}
	if !strings.Contains(logs.String(), "msg=reloaded") || !strings.Contains(logs.String(), "changed=[app.lua]") {
		t.Fatalf("no reload log line:\n%s", logs)
	}
	// Nothing changed: nothing done.
	if report, err := eng.Reload(ctx); err != nil || !report.Unchanged {
		t.Fatalf("second reload: %v %v", report, err)
	}
}

func TestFailedReloadKeepsServing(t *testing.T) {
	cases := []struct {
		name, file, content, want string
	}{
		{"syntax error", "app.lua", "local M = {\n", "app.lua:1: syntax error: unexpected end of file"},
		{"parse_config raises", "app.lua", "local M = {} function M.parse_config() error('bad config') end function M.init() end return M", "Failed to parse config for module 'app.lua'"},
		{"init raises", "app.lua", "local M = {} function M.init(api) api.nope() end return M", "Error during startup of module 'app.lua'"},
		{"route under a reserved prefix", "app.lua", "local M = {} function M.init(api) api.register_web_resource('/_synapse/admin/x', function() end) end return M", "is under /_synapse/admin"},
		{"route above a reserved prefix", "app.lua", "local M = {} function M.init(api) api.register_web_resource('/_matrix', function() end) end return M", "contains /_matrix/client"},
		{"init times out", "app.lua", "local M = {} function M.init(api) while true do end end return M", "context deadline exceeded"},
		{"YAML", "luamods.yaml", "modules: [\n", "not valid YAML"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			files := reloadFiles()
			files["luamods.yaml"] = "modules:\n  - module: steady.lua\n  - module: app.lua\n    timeout: 200ms\n"
			eng, _, err := startEngine(t, files)
			if err != nil {
				t.Fatal(err)
			}
			before := eng.Current()
			run(t, eng, "x")
			rewrite(t, eng, c.file, c.content)
			_, err = eng.Reload(context.Background())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("reload error = %v, want %q", err, c.want)
			}
			if eng.Current() != before {
				t.Fatal("a failed reload swapped generations")
			}
			if got := run(t, eng, "x"); got != "v1:2" {
				t.Fatalf("old code answers %q", got)
			}
			if failed := eng.metrics.Reloads.WithLabelValues("failed"); failed == nil {
				t.Fatal("no failed counter")
			}
		})
	}
}

func TestCachesSurviveForUnchangedModulesOnly(t *testing.T) {
	files := reloadFiles()
	files["luamods.yaml"] = "modules:\n  - module: steady.lua\n    config: {v: 1}\n  - module: app.lua\n"
	eng, _, err := startEngine(t, files)
	if err != nil {
		t.Fatal(err)
	}
	read := func() string {
		gen, release := eng.Acquire()
		defer release()
		m := gen.Module("steady.lua")
		res, err := m.State().Call(context.Background(), "route:/_synapse/client/steady", map[string]any{})
		if err != nil {
			t.Fatal(err)
		}
		return res[0].(map[string]any)["body"].(string)
	}
	first, second := read(), read()
	if first != "1" || second != "1" {
		t.Fatalf("not cached: %s then %s", first, second)
	}
	rewrite(t, eng, "app.lua", versioned("v2"))
	if _, err := eng.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "1" {
		t.Fatalf("unchanged module lost its cache: %s", got)
	}
	// Changing steady's config makes it a new module: fresh state and cache.
	rewrite(t, eng, "luamods.yaml", "modules:\n  - module: steady.lua\n    config: {v: 2}\n  - module: app.lua\n")
	if _, err := eng.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "1" {
		t.Fatalf("changed module: %s, want a fresh computation (seen = 1)", got)
	}
}

func TestReloadSeesRequiredFiles(t *testing.T) {
	eng, _, err := startEngine(t, map[string]string{
		"luamods.yaml": "modules:\n  - module: app.lua\n",
		"app.lua": `local helper = require("helper")
local M = {}
function M.init(api) api.register_test_callbacks{ run = function() return helper.answer() end } end
return M`,
		"helper.lua": `return { answer = function() return "v1" end }`,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if got := run(t, eng, "x"); got != "v1" {
		t.Fatalf("got %q", got)
	}
	if report, err := eng.Reload(ctx); err != nil || !report.Unchanged {
		t.Fatalf("nothing changed, yet: %v %v", report, err)
	}
	rewrite(t, eng, "helper.lua", `return { answer = function() return "v2" end }`)
	report, err := eng.Reload(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(report.Changed, ",") != "app.lua" {
		t.Fatalf("a changed helper did not change its module: %s", report)
	}
	if got := run(t, eng, "x"); got != "v2" {
		t.Fatalf("after reload got %q", got)
	}
}

// Templates are reloaded with their module: a changed template changes the
// module that read it.
func TestReloadSeesTemplates(t *testing.T) {
	eng, _, err := startEngine(t, map[string]string{
		"luamods.yaml": "modules:\n  - module: app.lua\n",
		"app.lua": `local M = {}
function M.init(api)
  local t = api.read_templates({"greeting.txt"})[1]
  api.register_test_callbacks{ run = function(name) return t:render{name = name} end }
end
return M`,
		"greeting.txt": `hello {{ name }}`,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := run(t, eng, "ann"); got != "hello ann" {
		t.Fatalf("got %q", got)
	}
	if report, err := eng.Reload(context.Background()); err != nil || !report.Unchanged {
		t.Fatalf("nothing changed, yet: %v %v", report, err)
	}
	rewrite(t, eng, "greeting.txt", `good day {{ name }}`)
	if !eng.Stale() {
		t.Fatal("a changed template is not seen")
	}
	report, err := eng.Reload(context.Background())
	if err != nil || strings.Join(report.Changed, ",") != "app.lua" {
		t.Fatalf("a changed template did not change its module: %v %v", report, err)
	}
	if got := run(t, eng, "ann"); got != "good day ann" {
		t.Fatalf("after reload got %q", got)
	}
}

func TestStaleTracksLoadedFiles(t *testing.T) {
	eng, _, err := startEngine(t, map[string]string{
		"luamods.yaml": "modules:\n  - module: app.lua\n",
		"app.lua":      `local helper = require("helper") return {init = function() end}`,
		"helper.lua":   `return 1`,
	})
	if err != nil {
		t.Fatal(err)
	}
	if eng.Stale() {
		t.Fatal("stale right after loading")
	}
	rewrite(t, eng, "helper.lua", `return 2`)
	if !eng.Stale() {
		t.Fatal("a changed required file is not seen")
	}
	if _, err := eng.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if eng.Stale() {
		t.Fatal("stale after reloading")
	}
	rewrite(t, eng, "luamods.yaml", "modules:\n  - module: app.lua\n# edited\n")
	if !eng.Stale() {
		t.Fatal("a changed configuration is not seen")
	}
}

// A reload that fails keeps the Redis settings of the generation serving:
// invalidations still reach the Redis they reached before.
func TestFailedReloadKeepsRedisSettings(t *testing.T) {
	rs := startRedis(t)
	config := func(port int) string {
		return fmt.Sprintf("cache: {redis: {addr: '127.0.0.1:%d', channel: t}}\nmodules:\n  - module: m1.lua\n", port)
	}
	eng, _, err := startEngine(t, map[string]string{"luamods.yaml": config(rs.port), "m1.lua": cachedModule})
	if err != nil {
		t.Fatal(err)
	}
	publishErrors := func() float64 {
		return max(0, metricValue(t, eng, "luamods_cache_fanout_errors_total", "op", "publish"))
	}
	cacheCall(t, eng, "everywhere", "a")
	if n := publishErrors(); n != 0 {
		t.Fatalf("publishing to a running redis-server failed %v times", n)
	}
	// The next configuration names a Redis nobody listens on, and a module
	// that does not compile.
	rewrite(t, eng, "luamods.yaml", config(freePort(t)))
	rewrite(t, eng, "m1.lua", "local M = {\n")
	if _, err := eng.Reload(context.Background()); err == nil {
		t.Fatal("the reload should fail")
	}
	cacheCall(t, eng, "everywhere", "b")
	if n := publishErrors(); n != 0 {
		t.Fatalf("after a failed reload, publishing failed %v times: the new Redis address was kept", n)
	}
}
