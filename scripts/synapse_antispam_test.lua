-- Tests of synapse_antispam.lua.

local config = {
  invite_blocked_servers = { "Spam.Example" },
  join_blocked_rooms = { "!bad:example.com" },
  join_blocked_servers = { "evil.example" },
  keywords = { "Buy Followers" },
  keyword_patterns = { "crypto\\s+giveaway" },
}

local function message(body)
  return { type = "m.room.message", sender = "@a:remote.example", event_id = "$1", room_id = "!r:example.com",
    content = { msgtype = "m.text", body = body } }
end

test("invites from blocked servers are refused, others allowed", function()
  local m = luamods.load("synapse_antispam.lua", config)
  local code, extra = m:invoke("spam_checker.user_may_invite", "@bot:spam.example", "@me:example.com", "!r:example.com")
  expect.eq(code, "M_FORBIDDEN")
  expect.eq(extra, { error = "Invites from spam.example are blocked on this server" })
  expect.eq(m:invoke("spam_checker.user_may_invite", "@friend:ok.example", "@me:example.com", "!r:example.com"), "NOT_SPAM")
  expect.contains(m:logs(), "refusing invite from @bot:spam.example")
end)

test("federated invites go through the same rule", function()
  local m = luamods.load("synapse_antispam.lua", config)
  local invite = { type = "m.room.member", sender = "@bot:spam.example", state_key = "@me:example.com",
    room_id = "!r:spam.example", content = { membership = "invite" } }
  expect.eq(m:invoke("spam_checker.federated_user_may_invite", invite), "M_FORBIDDEN")
  invite.sender = "@friend:ok.example"
  expect.eq(m:invoke("spam_checker.federated_user_may_invite", invite), "NOT_SPAM")
end)

test("joins to blocked rooms are refused unless invited", function()
  local m = luamods.load("synapse_antispam.lua", config)
  local code, extra = m:invoke("spam_checker.user_may_join_room", "@me:example.com", "!bad:example.com", false)
  expect.eq(code, "M_FORBIDDEN")
  expect.eq(extra.error, "This room is blocked on this server")
  expect.eq(m:invoke("spam_checker.user_may_join_room", "@me:example.com", "!any:evil.example", false), "M_FORBIDDEN")
  expect.eq(m:invoke("spam_checker.user_may_join_room", "@me:example.com", "!bad:example.com", true), "NOT_SPAM")
  expect.eq(m:invoke("spam_checker.user_may_join_room", "@me:example.com", "!fine:example.com", false), "NOT_SPAM")
end)

test("keywords and patterns in message bodies are refused", function()
  local m = luamods.load("synapse_antispam.lua", config)
  local code, extra = m:invoke("spam_checker.check_event_for_spam", message("BUY FOLLOWERS today"))
  expect.eq(code, "M_FORBIDDEN")
  expect.eq(extra, { error = "Your message was blocked by this server's content filter" })
  expect.eq(m:invoke("spam_checker.check_event_for_spam", message("big crypto   giveaway")), "M_FORBIDDEN")
  expect.eq(m:invoke("spam_checker.check_event_for_spam", message("hello")), "NOT_SPAM")
  expect.eq(m:invoke("spam_checker.check_event_for_spam", { type = "m.room.member", content = { membership = "join" } }), "NOT_SPAM")
end)

test("bad configuration is refused with the key", function()
  expect.error(function() luamods.load("synapse_antispam.lua", { keywords = "spam" }) end, "keywords must be a list of strings")
  expect.error(function() luamods.load("synapse_antispam.lua", { invite_blocked_servers = { 5 } }) end, "invite_blocked_servers[1] must be a string")
  expect.error(function() luamods.load("synapse_antispam.lua", { keyword_patterns = { "(" } }) end, "(")
end)

test("nothing configured allows everything", function()
  local m = luamods.load("synapse_antispam.lua", {})
  expect.eq(m:invoke("spam_checker.user_may_invite", "@bot:spam.example", "@me:example.com", "!r:example.com"), "NOT_SPAM")
  expect.eq(m:invoke("spam_checker.check_event_for_spam", message("buy followers")), "NOT_SPAM")
end)
