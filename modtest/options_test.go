package modtest

import (
	"strings"
	"testing"
)

func TestLoadOptionsAndErrorPositions(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"who.lua": `local M = {}
local api
function M.parse_config(c) if c.fail then error("fail is set") end return c end
function M.init(a) api = a
  a.register_spam_checker_callbacks{ user_may_invite = function() error("no invites") end }
end
function M.who() return api.server_name, api.public_baseurl, api.worker_name end
return M`,
		"luamods.yaml": "server_name: file.example\npublic_baseurl: https://matrix.file.example/\nmodules:\n  - module: who.lua\n",
		"who_test.lua": `
test("unknown options are refused with the known ones listed", function()
  local err = expect.error(function() luamods.load("who.lua", {}, {sever_name = "x"}) end)
  expect.contains(err, 'unknown option "sever_name" (did you mean "server_name"?); the options are background_timeout, instances, public_baseurl, sandbox, server_name, timeout, worker_name')
  expect.error(function() luamods.load("who.lua", {}, {timeout = "5s"}) end, "option timeout must be a number, not a string")
  expect.error(function() luamods.load_config("luamods.yaml", {instances = 2}) end,
    'unknown option "instances"; the options are public_baseurl, server_name, worker_name')
end)
test("public_baseurl defaults to https://<server_name>/ and is kept when given", function()
  expect.eq({luamods.load("who.lua"):call("who")}, {"example.com", "https://example.com/"})
  expect.eq({luamods.load("who.lua", {}, {server_name = "a.example"}):call("who")}, {"a.example", "https://a.example/"})
  local m = luamods.load("who.lua", {}, {server_name = "a.example", public_baseurl = "http://127.0.0.1:8008/", worker_name = "w1"})
  expect.eq({m:call("who")}, {"a.example", "http://127.0.0.1:8008/", "w1"})
end)
test("load_config keeps the file's settings unless told otherwise", function()
  expect.eq({luamods.load_config("luamods.yaml"):call("who")}, {"file.example", "https://matrix.file.example/"})
  expect.eq({luamods.load_config("luamods.yaml", {worker_name = "w2"}):call("who")}, {"file.example", "https://matrix.file.example/", "w2"})
end)
test("a load error is raised at the test's line", function()
  luamods.load("who.lua", {fail = true})
end)
test("an invoke error is raised at the test's line", function()
  local m = luamods.load("who.lua")
  m:invoke("spam_checker.user_may_invite", "@a:x", "@b:x", "!r:x")
end)
`,
	})
	res, out := runLuaTests(t, dir)
	if res.Passed != 3 || res.Failed != 2 {
		t.Fatalf("passed %d, failed %d:\n%s", res.Passed, res.Failed, out)
	}
	for _, want := range []string{
		"who_test.lua:20: luamods.load: Error in configuration at 'modules.<item 0>.config'",
		"who.lua:3: fail is set",
		"who_test.lua:24: invoke: spam_checker.user_may_invite:",
		"who.lua:5: no invites",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q:\n%s", want, out)
		}
	}
}
