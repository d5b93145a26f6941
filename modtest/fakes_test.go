package modtest

import (
	"testing"
)

const scriptedModule = `local M = {}
local api
function M.init(a) api = a end
-- invite retries with api.sleep between attempts, as auto-accept-invite does.
function M.invite(room, attempts)
  for i = 1, attempts do
    local ok, err = pcall(api.update_room_membership, "@bot:example.com", "@u:example.com", room, "join")
    if ok then return i, err end
    if i == attempts then error(err) end
    api.sleep(2 ^ i)
  end
end
function M.host(method, ...)
  local ok, a, b = pcall(api[method], ...)
  return ok, a, b
end
function M.get(url)
  local ok, res = pcall(api.http_client.get_json, url)
  if ok then return res end
  return {failed = true, code = res.code, msg = res.msg}
end
function M.post(url, body)
  return api.http_client.post_json_get_json(url, body)
end
return M`

const scriptedTest = `
test("fail twice, then succeed: a retry loop with api.sleep", function()
  local m = luamods.load("scripted.lua", nil, {timeout = 10}) -- it sleeps 6 s: over the default 5 s
  m.host:answer("update_room_membership", {event_id = "$joined"})
  m.host:fail("update_room_membership", {errcode = "M_LIMIT_EXCEEDED", error = "slow down"}, {times = 2})
  local t0 = m.clock:now()
  local attempt, result = m:call("invite", "!r:example.com", 5)
  expect.eq(attempt, 3)
  expect.eq(result, {event_id = "$joined"})
  expect.eq(m.clock:now() - t0, 6000) -- slept 2 s, then 4 s, in virtual time
  expect.eq(#m.host:calls("update_room_membership"), 3)
end)

test("a scripted error reaches the module as the table it is", function()
  local m = luamods.load("scripted.lua")
  m.host:fail("update_room_membership", {errcode = "M_FORBIDDEN", error = "banned"})
  local err = expect.error(function() m:call("invite", "!r:example.com", 2) end)
  expect.contains(tostring(err), "M_FORBIDDEN")
  local ok, e = m:call("host", "update_room_membership", "@a:x", "@b:x", "!r:x", "join")
  expect.eq(ok, false)
  expect.eq(e, {errcode = "M_FORBIDDEN", error = "banned"})
end)

test("an answer computed from the arguments", function()
  local m = luamods.load("scripted.lua")
  m.host:answer("check_user_exists", function(user_id)
    if user_id == "@alice:example.com" then return user_id end
    return nil
  end)
  m.host:answer("get_profile_for_user", function(user) return {displayname = user:sub(2, 4)}, "extra" end)
  expect.eq({m:call("host", "check_user_exists", "@alice:example.com")}, {true, "@alice:example.com"})
  expect.eq({m:call("host", "check_user_exists", "@bob:example.com")}, {true})
  expect.eq({m:call("host", "get_profile_for_user", "@carol:x")}, {true, {displayname = "car"}, "extra"})
end)

test("a sequence answers once each, then says it is used up", function()
  local m = luamods.load("scripted.lua")
  m.host:answer("is_user_admin", {sequence = {false, true, function() return "computed" end}})
  expect.eq({m:call("host", "is_user_admin", "@a:x")}, {true, false})
  expect.eq({m:call("host", "is_user_admin", "@a:x")}, {true, true})
  expect.eq({m:call("host", "is_user_admin", "@a:x")}, {true, "computed"})
  local ok, err = m:call("host", "is_user_admin", "@a:x")
  expect.eq(ok, false)
  expect.contains(err, "its 3 answers in sequence are used up")
end)

test("fake HTTP: per URL, a function, a sequence, failures", function()
  local m = luamods.load("scripted.lua")
  m.http:answer("GET", "https://a.example/x", {sequence = {{status = 503, body = "busy"}, {json = {n = 1}}}})
  m.http:fail("GET", "https://b.example/y", "connection refused", {times = 1})
  m.http:answer("GET", "https://b.example/y", {json = {ok = true}})
  m.http:answer("POST", "https://c.example/echo", function(req)
    return {status = 201, json = {got = req.json, method = req.method}}
  end)
  expect.eq(m:call("get", "https://a.example/x"), {failed = true, code = 503, msg = "Service Unavailable"})
  expect.eq(m:call("get", "https://a.example/x"), {n = 1})
  local failed = m:call("get", "https://b.example/y")
  expect.eq(failed.code, 0)
  expect.contains(failed.msg, "connection refused")
  expect.eq(m:call("get", "https://b.example/y"), {ok = true})
  expect.eq(m:call("post", "https://c.example/echo", {a = 1}), {got = {a = 1}, method = "POST"})
  expect.eq(#m.http:requests(), 5)
end)

test("bad scripts are refused where they are written", function()
  local m = luamods.load("scripted.lua")
  expect.error(function() m.http:answer("GET", "https://a.example/", {stauts = 200}) end, 'unknown field "stauts"')
  expect.error(function() m.host:fail("get_room_state", "x", {times = 0}) end, "times must be at least 1")
end)
`

func TestScriptedFakes(t *testing.T) {
	dir := writeFiles(t, map[string]string{"scripted.lua": scriptedModule, "scripted_test.lua": scriptedTest})
	res, out := runLuaTests(t, dir)
	if res.Failed != 0 || res.Passed != 6 {
		t.Fatalf("passed %d, failed %d:\n%s", res.Passed, res.Failed, out)
	}
}
