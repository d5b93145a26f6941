package modtest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunnerReportsFailuresWithFileAndLine(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"mod.lua": `local M = {}
function M.init(api, config)
  api.register_spam_checker_callbacks{ user_may_invite = function(a, b, room)
    local state = api.get_room_state(room)
    if state.blocked then return api.errors.FORBIDDEN end
    return api.NOT_SPAM
  end }
  api.looping_background_call(function() ticks = (ticks or 0) + 1 end, 1000)
end
function M.ticks() return ticks or 0 end
return M`,
		"mod_test.lua": `
test("host answers drive the callback", function()
  local m = luamods.load("mod.lua")
  m.host:answer("get_room_state", {blocked = true})
  expect.eq(m:invoke("spam_checker.user_may_invite", "@a:x", "@b:x", "!r:x"), "M_FORBIDDEN")
  local calls = m.host:calls("get_room_state")
  expect.eq(#calls, 1)
  expect.eq(calls[1].args, {"!r:x"})
end)
test("a missing answer is a clear error", function()
  local m = luamods.load("mod.lua")
  expect.error(function() m:invoke("spam_checker.user_may_invite", "@a:x", "@b:x", "!r:x") end, "no answer for get_room_state")
end)
test("the virtual clock drives background calls", function()
  local m = luamods.load("mod.lua")
  expect.eq(m:call("ticks"), 0)
  m.clock:advance(3.5)
  expect.eq(m:call("ticks"), 3)
end)
test("this one fails", function()
  local m = luamods.load("mod.lua")
  m.host:answer("get_room_state", {})
  expect.eq(m:invoke("spam_checker.user_may_invite", "@a:x", "@b:x", "!r:x"), "M_FORBIDDEN")
end)
`,
		"broken_test.lua": "test('x', function() end\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	found, err := Discover([]string{dir})
	if err != nil || len(found) != 2 {
		t.Fatalf("Discover = %v, %v", found, err)
	}
	var out bytes.Buffer
	res := (&Runner{Out: &out}).Run(context.Background(), found)
	if res.Passed != 3 || res.Failed != 2 {
		t.Fatalf("passed %d, failed %d:\n%s", res.Passed, res.Failed, out.String())
	}
	for _, want := range []string{
		"ok    host answers drive the callback",
		"ok    the virtual clock drives background calls",
		"FAIL  this one fails",
		"mod_test.lua:23: expected \"M_FORBIDDEN\", got \"NOT_SPAM\"",
		"FAIL  (loading the file)",
		"broken_test.lua:1: syntax error",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestExampleModules(t *testing.T) {
	files, err := Discover([]string{"../scripts"})
	if err != nil || len(files) == 0 {
		t.Fatalf("no example tests: %v", err)
	}
	var out bytes.Buffer
	res := (&Runner{Out: &out}).Run(context.Background(), files)
	if res.Failed != 0 || res.Passed < 10 {
		t.Fatalf("passed %d, failed %d:\n%s", res.Passed, res.Failed, out.String())
	}
}
