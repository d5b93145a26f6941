package modtest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFiles writes name → content into a new folder and returns it.
func writeFiles(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// runLuaTests runs the *_test.lua files of dir and returns the report.
func runLuaTests(t testing.TB, dir string) (Result, string) {
	t.Helper()
	files, err := Discover([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res := (&Runner{Out: &out}).Run(context.Background(), files)
	return res, out.String()
}

// retryModule ticks every 10 s; each tick makes three homeserver calls, a
// virtual second apart, one outbound request, and starts a background
// process that sleeps 2 s and calls the homeserver once more. The old
// harness settled a fixed number of rounds, so how many of these calls had
// happened after advance(60) changed from run to run.
const retryModule = `local M = {}
function M.init(api, config)
  api.looping_background_call(function()
    for i = 1, 3 do
      api.sleep(1)
      api.update_room_membership("@bot:example.com", "@u:example.com", "!r:example.com", "invite")
    end
    api.http_client.get_json("https://service.example/ping")
    api.run_as_background_process("notify", function(room)
      api.sleep(2)
      api.create_and_send_event_into_room({type = "m.notice", room_id = room})
    end, "!r:example.com")
  end, 10000)
end
return M`

const retryTest = `test("advance runs everything that falls due, and nothing more", function()
  local m = luamods.load("retry.lua")
  m.host:answer("update_room_membership", {})
  m.host:answer("create_and_send_event_into_room", {})
  m.http:answer("GET", "https://service.example/ping", {json = {}})
  m.clock:advance(60)
  -- The next tick is scheduled when the previous one ends: ticks at 10, 23,
  -- 36 and 49 have finished (3 calls each, by +3 s; their notices by +5 s);
  -- the next is due at 62.
  expect.eq(#m.host:calls("update_room_membership"), 12)
  expect.eq(#m.host:calls("create_and_send_event_into_room"), 4)
  expect.eq(#m.http:requests(), 4)
  m.clock:advance(3) -- 63: the tick of 62 has made its first call
  expect.eq(#m.host:calls("update_room_membership"), 13)
  m.clock:advance(2) -- 65: it has finished; its notice is due at 67
  expect.eq(#m.host:calls("update_room_membership"), 15)
  expect.eq(#m.http:requests(), 5)
  expect.eq(#m.host:calls("create_and_send_event_into_room"), 4)
  m.clock:advance(2)
  expect.eq(#m.host:calls("create_and_send_event_into_room"), 5)
end)
`

// TestAdvanceIsDeterministic runs the same advance 200 times: the counts
// are exact every time.
func TestAdvanceIsDeterministic(t *testing.T) {
	dir := writeFiles(t, map[string]string{"retry.lua": retryModule, "retry_test.lua": retryTest})
	files, err := Discover([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	runs := 200
	if testing.Short() {
		runs = 20
	}
	for i := 0; i < runs; i++ {
		var out bytes.Buffer
		res := (&Runner{Out: &out}).Run(context.Background(), files)
		if res.Passed != 1 || res.Failed != 0 {
			t.Fatalf("run %d: %s", i, out.String())
		}
	}
}

// TestBackgroundDeadlines: a background retry loop that sleeps longer than
// the call timeout succeeds (background_timeout), while a callback that
// sleeps past its timeout fails, in virtual time as it would in serve.
func TestBackgroundDeadlines(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"bg.lua": `local M = {}
local done = 0
function M.init(api, config)
  api.delayed_background_call(1000, function()
    for attempt = 1, 3 do api.sleep(5) end  -- 15 s in all, the call timeout is 5 s
    done = done + 1
  end)
  api.register_spam_checker_callbacks{ user_may_invite = function()
    api.sleep(config.nap)
    return api.NOT_SPAM
  end }
end
function M.done() return done end
return M`,
		"bg_test.lua": `test("a background retry loop outlives the call timeout", function()
  local m = luamods.load("bg.lua", {nap = 1})
  m.clock:advance(16)
  expect.eq(m:call("done"), 1)
  expect.eq(m:logs():find("background process failed"), nil)
end)
test("a callback that sleeps past its timeout fails as in serve", function()
  local m = luamods.load("bg.lua", {nap = 6})
  expect.error(function() m:invoke("spam_checker.user_may_invite", "@a:x", "@b:x", "!r:x") end, "deadline exceeded")
end)
test("a callback that sleeps within its timeout sees the time pass", function()
  local m = luamods.load("bg.lua", {nap = 4})
  local before = m.clock:now()
  expect.eq(m:invoke("spam_checker.user_may_invite", "@a:x", "@b:x", "!r:x"), "NOT_SPAM")
  expect.eq(m.clock:now() - before, 4000)
end)
test("background_timeout binds background calls", function()
  local m = luamods.load("bg.lua", {nap = 1}, {background_timeout = 10})
  m.clock:advance(16)
  expect.eq(m:call("done"), 0)
  local line = m:logs():match("[^\n]*background process failed[^\n]*")
  local _, n = line:gsub("module=", "")
  expect.eq(n, 1, line) -- the module is named once
end)
`,
	})
	res, out := runLuaTests(t, dir)
	if res.Passed != 4 || res.Failed != 0 {
		t.Fatalf("passed %d, failed %d:\n%s", res.Passed, res.Failed, out)
	}
	if strings.Contains(out, "FAIL") {
		t.Fatal(out)
	}
}

// TestALoopingCallTicksAtEverySecond: a looping call that does nothing
// ticks exactly once per interval over a long advance. Its next tick is
// scheduled as the previous one ends; the harness once saw the state idle
// in between and moved the clock past the tick (1 run in a few hundred).
func TestALoopingCallTicksAtEverySecond(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"tick.lua": `local M = {}
local ticks = 0
function M.init(api) api.looping_background_call(function() ticks = ticks + 1 end, 1000) end
function M.ticks() return ticks end
return M`,
		"tick_test.lua": `test("one tick a second", function()
  local m = luamods.load("tick.lua")
  m.clock:advance(2000.5)
  expect.eq(m:call("ticks"), 2000)
end)`,
	})
	if res, out := runLuaTests(t, dir); res.Passed != 1 {
		t.Fatal(out)
	}
}
