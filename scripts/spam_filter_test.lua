-- Tests of spam_filter.lua.

local config = { banned_words = { "Viagra", "free money" }, blocked_servers = { "spam.example" } }

test("banned words are rejected with M_FORBIDDEN and a reason", function()
  local m = luamods.load("spam_filter.lua", config)
  local code, extra = m:invoke("spam_checker.check_event_for_spam",
    { type = "m.room.message", sender = "@a:x", event_id = "$1", content = { body = "Get FREE MONEY now" } })
  expect.eq(code, "M_FORBIDDEN")
  expect.eq(extra, { reason = "banned word" })
  expect.contains(m:logs(), "rejecting event $1 from @a:x")
end)

test("other messages and non-text events pass", function()
  local m = luamods.load("spam_filter.lua", config)
  expect.eq(m:invoke("spam_checker.check_event_for_spam", { content = { body = "hello" } }), "NOT_SPAM")
  expect.eq(m:invoke("spam_checker.check_event_for_spam", { content = { url = "mxc://x/y" } }), "NOT_SPAM")
end)

test("invites from blocked servers are refused", function()
  local m = luamods.load("spam_filter.lua", config)
  local code = m:invoke("spam_checker.user_may_invite", "@bot:spam.example", "@me:example.com", "!r:example.com")
  expect.eq(code, "M_FORBIDDEN")
  expect.eq(m:invoke("spam_checker.user_may_invite", "@friend:ok.example", "@me:example.com", "!r:example.com"), "NOT_SPAM")
end)
