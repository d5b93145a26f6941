-- Tests of auto_accept_invite.lua, on the fake homeserver of luamods test.

local function invite(fields)
  local ev = {
    type = "m.room.member", room_id = "!room:example.com", event_id = "$invite",
    sender = "@alice:example.com", state_key = "@bob:example.com",
    content = { membership = "invite" },
  }
  for k, v in pairs(fields or {}) do ev[k] = v end
  return ev
end

local joined = { type = "m.room.member", state_key = "@bob:example.com", content = { membership = "join" } }

test("a local user's invite is accepted by that user", function()
  local m = luamods.load("auto_accept_invite.lua")
  m.host:answer("update_room_membership", joined)
  m:invoke("third_party_rules.on_new_event", invite(), {})
  local calls = m.host:calls("update_room_membership")
  expect.eq(#calls, 1)
  expect.eq(calls[1].args, { "@bob:example.com", "@bob:example.com", "!room:example.com", "join" })
  expect.eq(#m.host:calls("account_data_manager.put_global"), 0)
end)

test("events that are not invites of local users are left alone", function()
  local m = luamods.load("auto_accept_invite.lua")
  for _, ev in ipairs({
    invite({ content = { membership = "join" } }),
    invite({ state_key = "@carol:elsewhere.org" }),
    invite({ sender = "@bob:example.com" }),
    { type = "m.room.message", room_id = "!room:example.com", sender = "@alice:example.com", content = { body = "hi" } },
  }) do
    m:invoke("third_party_rules.on_new_event", ev, {})
  end
  expect.eq(#m.host:calls(), 0)
end)

test("a direct-message invite is recorded in m.direct", function()
  local m = luamods.load("auto_accept_invite.lua")
  m.host:answer("update_room_membership", joined)
  m.host:answer("account_data_manager.get_global", { ["@alice:example.com"] = { "!old:example.com" }, ["@dave:example.com"] = { "!d:example.com" } })
  m.host:answer("account_data_manager.put_global", nil)
  m:invoke("third_party_rules.on_new_event", invite({ content = { membership = "invite", is_direct = true } }), {})
  local puts = m.host:calls("account_data_manager.put_global")
  expect.eq(#puts, 1)
  expect.eq(puts[1].args, { "@bob:example.com", "m.direct", {
    ["@alice:example.com"] = { "!old:example.com", "!room:example.com" },
    ["@dave:example.com"] = { "!d:example.com" },
  } })
end)

test("m.direct already naming the room is not rewritten", function()
  local m = luamods.load("auto_accept_invite.lua")
  m.host:answer("update_room_membership", joined)
  m.host:answer("account_data_manager.get_global", { ["@alice:example.com"] = { "!room:example.com" } })
  m:invoke("third_party_rules.on_new_event", invite({ content = { membership = "invite", is_direct = true } }), {})
  expect.eq(#m.host:calls("account_data_manager.put_global"), 0)
end)

test("only direct messages, only local inviters, another worker", function()
  local dm_only = luamods.load("auto_accept_invite.lua", { accept_invites_only_for_direct_messages = true })
  dm_only:invoke("third_party_rules.on_new_event", invite(), {})
  expect.eq(#dm_only.host:calls(), 0)

  local local_only = luamods.load("auto_accept_invite.lua", { accept_invites_only_from_local_users = true })
  local_only:invoke("third_party_rules.on_new_event", invite({ sender = "@eve:remote.org" }), {})
  expect.eq(#local_only.host:calls(), 0)

  local other = luamods.load("auto_accept_invite.lua", { worker_to_run_on = "worker2" })
  other:invoke("third_party_rules.on_new_event", invite(), {})
  expect.eq(#other.host:calls(), 0)
end)

test("a failing join is retried with a doubling pause, then given up", function()
  -- the pauses (2 + 4 + 8 s) need a timeout above the default 5 s, as in matrix.yaml
  local m = luamods.load("auto_accept_invite.lua", { join_attempts = 4, join_backoff = 2 }, { timeout = 60 })
  -- no answer for update_room_membership: every join fails
  local before = m.clock:now()
  m:invoke("third_party_rules.on_new_event", invite(), {})
  expect.eq(#m.host:calls("update_room_membership"), 4)
  expect.eq(m.clock:now() - before, (2 + 4 + 8) * 1000)
  expect.contains(m:logs(), "could not join !room:example.com after 4 attempts")
end)

test("bad configuration is refused", function()
  expect.error(function() luamods.load("auto_accept_invite.lua", { join_attempts = "many" }) end, "join_attempts must be a number")
  expect.error(function() luamods.load("auto_accept_invite.lua", { join_attempts = 0 }) end, "at least 1")
  expect.error(function() luamods.load("auto_accept_invite.lua", { accept_invites_only_for_direct_messages = "yes" }) end, "must be a boolean")
end)

test("a join that fails twice succeeds on the third try", function()
  local m = luamods.load("auto_accept_invite.lua", { join_backoff = 1 }, { timeout = 60 })
  m.host:answer("update_room_membership", joined)
  m.host:fail("update_room_membership", { errcode = "M_FORBIDDEN", error = "not ready" }, { times = 2 })
  local before = m.clock:now()
  m:invoke("third_party_rules.on_new_event", invite(), {})
  expect.eq(#m.host:calls("update_room_membership"), 3)
  expect.eq(m.clock:now() - before, (1 + 2) * 1000)
  expect.contains(m:logs(), "attempt 2: not ready")
  expect.contains(m:logs(), "@bob:example.com accepted the invite to !room:example.com")
end)

test("scripts/matrix.yaml runs it", function()
  local m = luamods.load_config("matrix.yaml")
  m.host:answer("update_room_membership", joined)
  m:invoke("third_party_rules.on_new_event", invite(), {})
  expect.eq(#m.host:calls("update_room_membership"), 1)
end)
