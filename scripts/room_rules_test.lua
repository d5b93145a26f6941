-- Tests of room_rules.lua.

local config = { forbidden_event_types = { "org.example.forbidden" } }

test("forbidden event types are refused, others allowed", function()
  local m = luamods.load("room_rules.lua", config)
  local allowed = m:invoke("third_party_rules.check_event_allowed", { type = "org.example.forbidden", content = {} }, {})
  expect.eq(allowed, false)
  local ok, replacement = m:invoke("third_party_rules.check_event_allowed", { type = "m.room.message", content = { body = "hi" } }, {})
  expect.eq(ok, true)
  expect.eq(replacement, nil)
end)

test("/shrug is replaced", function()
  local m = luamods.load("room_rules.lua", config)
  local ok, event = m:invoke("third_party_rules.check_event_allowed", { type = "m.room.message", content = { body = "/shrug" } }, {})
  expect.eq(ok, true)
  expect.eq(event.content.body, "¯\\_(ツ)_/¯")
end)

test("new rooms get encryption in their initial state", function()
  local m = luamods.load("room_rules.lua", config)
  local content = m:invoke("third_party_rules.on_create_room", { user = "@a:example.com" }, { name = "room" }, false)
  expect.eq(content.name, "room")
  expect.eq(content.initial_state[1].type, "m.room.encryption")
end)

test("only admins create public rooms", function()
  local m = luamods.load("room_rules.lua", config)
  local err = expect.error(function()
    m:invoke("third_party_rules.on_create_room", { user = "@a:example.com" }, { visibility = "public" }, false)
  end, "Only admins may create public rooms")
  local content = m:invoke("third_party_rules.on_create_room", { user = "@admin:example.com" }, { visibility = "public" }, true)
  expect.eq(content.visibility, "public")
  expect.eq(m:invoke("third_party_rules.check_visibility_can_be_modified", "!r:example.com", {}, "public"), false)
  expect.eq(m:invoke("third_party_rules.check_visibility_can_be_modified", "!r:example.com", {}, "private"), true)
end)
