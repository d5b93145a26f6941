-- The tests of matrix-org/synapse-domain-rule-checker
-- (tests/test_domain_rule_checker.py, Apache License 2.0), ported one for
-- one. MockModuleApi becomes the fake homeserver's scripted answers.

-- create_module(config, new_room, published, unknown_room): the module with
-- a homeserver that answers as tests/__init__.py's MockModuleApi does.
local function create_module(config, new_room, published, unknown_room)
  local m = luamods.load("domain_rule_checker.lua", config, {server_name = "source_one"})
  m.host:answer("public_room_list_manager.room_is_in_public_room_list", published)
  m.host:answer("get_room_state", function(room_id, filter)
    if unknown_room then
      return {}
    end
    local function event(sender, membership)
      return {sender = sender, content = {membership = membership}}
    end
    local state = {
      ["m.room.create"] = {[""] = event("room_creator")},
      ["m.room.member"] = {
        room_creator = event("room_creator", "join"),
        invitee = event("room_creator", "invite"),
      },
    }
    if not new_room then
      state["m.room.member"].joinee = event("joinee", "join")
    end
    return state
  end)
  return m
end

-- Synapse's checker answers "NOT_SPAM" when every module allows.
local function allowed(result)
  return result == "NOT_SPAM"
end

local function may_invite(config, inviter, invitee, new_room, published, unknown_room)
  local m = create_module(config, new_room, published, unknown_room)
  if invitee == nil then
    return allowed(m:invoke("spam_checker.user_may_send_3pid_invite", inviter, "email", "a@b", "!r"))
  end
  return allowed(m:invoke("spam_checker.user_may_invite", inviter, invitee, "!r"))
end

local function may_join(config, is_invited)
  local m = create_module(config, false, false, false)
  return allowed(m:invoke("spam_checker.user_may_join_room", "@a:b", "!r", is_invited))
end

test("allowed", function()
  local config = {
    can_invite_if_not_in_domain_mapping = false,
    domain_mapping = {source_one = {"target_one", "target_two"}, source_two = {"target_two"}},
    domains_prevented_from_being_invited_to_published_rooms = {"target_two"},
  }
  expect.truthy(may_invite(config, "test:source_one", "test:target_one", false, false))
  expect.truthy(may_invite(config, "test:source_one", "test:target_two", false, false))
  expect.truthy(may_invite(config, "test:source_two", "test:target_two", false, false))
  -- an internal user into a published room
  expect.truthy(may_invite(config, "test:source_one", "test1:target_one", false, true))
  -- an external user into a room that is not published
  expect.truthy(may_invite(config, "test:source_one", "test:target_two", false, false))
end)

test("disallowed", function()
  local config = {
    can_invite_if_not_in_domain_mapping = true,
    domain_mapping = {
      source_one = {"target_one", "target_two"},
      source_two = {"target_two"},
      source_four = {},
    },
    domains_prevented_from_being_invited_to_published_rooms = {"target_two"},
  }
  expect.falsy(may_invite(config, "test:source_one", "test:target_three", false, false))
  expect.falsy(may_invite(config, "test:source_two", "test:target_three", false, false))
  expect.falsy(may_invite(config, "test:source_two", "test:target_one", false, false))
  expect.falsy(may_invite(config, "test:source_four", "test:target_one", false, false))
  -- an external user into a published room
  expect.falsy(may_invite(config, "test:source_one", "test:target_two", false, true))
end)

test("default allow", function()
  local config = {
    can_invite_if_not_in_domain_mapping = true,
    domain_mapping = {source_one = {"target_one", "target_two"}, source_two = {"target_two"}},
  }
  expect.truthy(may_invite(config, "test:source_three", "test:target_one", false, false))
end)

test("default deny", function()
  local config = {
    can_invite_if_not_in_domain_mapping = false,
    domain_mapping = {source_one = {"target_one", "target_two"}, source_two = {"target_two"}},
  }
  expect.falsy(may_invite(config, "test:source_three", "test:target_one", false, false))
end)

test("3pid invite denied", function()
  local config = {can_invite_if_not_in_domain_mapping = false, can_invite_by_third_party_id = false}
  expect.falsy(may_invite(config, "test:source_one", nil, false, false))
end)

test("3pid invite allowed", function()
  local config = {can_invite_if_not_in_domain_mapping = false, can_invite_by_third_party_id = true}
  expect.truthy(may_invite(config, "test:source_one", nil, false, false))
end)

test("join room", function()
  local config = {can_invite_if_not_in_domain_mapping = false, can_only_join_rooms_with_invite = true}
  expect.truthy(may_join(config, true))
  expect.falsy(may_join(config, false))
  config.can_only_join_rooms_with_invite = false
  expect.truthy(may_join(config, true))
  expect.truthy(may_join(config, false))
end)

test("config parse", function()
  local config = {
    can_invite_if_not_in_domain_mapping = false,
    domain_mapping = {source_one = {"target_one", "target_two"}, source_two = {"target_two"}},
  }
  local m = create_module(config, false, false, false)
  local parsed = m:call("parse_config", config)
  expect.eq(parsed.can_invite_if_not_in_domain_mapping, false)
  expect.eq(parsed.domain_mapping, config.domain_mapping)
  expect.eq(parsed.can_invite_by_third_party_id, true)
end)

test("config parse failure", function()
  local config = {domain_mapping = {source_one = {"target_one", "target_two"}, source_two = {"target_two"}}}
  expect.error(function() luamods.load("domain_rule_checker.lua", config) end,
    "DomainRuleChecker: can_invite_if_not_in_domain_mapping is required")
  expect.error(function()
    luamods.load("domain_rule_checker.lua", {can_invite_if_not_in_domain_mapping = true, domain_maping = {}})
  end, 'unexpected option "domain_maping"')
end)

test("invite unknown room", function()
  -- An invite for a room we have no state for (received over federation)
  -- does not look new: refused when invites are only allowed at creation.
  local config = {can_invite_if_not_in_domain_mapping = true, can_only_invite_during_room_creation = true}
  expect.falsy(may_invite(config, "@test:source_one", "@test2:source_one", false, false, true))
end)

test("remote invite", function()
  -- Invites from remote servers still come in when invites are only allowed at creation.
  local config = {can_invite_if_not_in_domain_mapping = true, can_only_invite_during_room_creation = true}
  expect.truthy(may_invite(config, "@test:source_two", "@test2:source_one", false, false, true))
end)

test("an invite into a room that is no longer new is refused when only creation may invite", function()
  -- Not in the original suite: the path through _is_new_room with state.
  local config = {can_invite_if_not_in_domain_mapping = true, can_only_invite_during_room_creation = true}
  expect.truthy(may_invite(config, "@test:source_one", "@x:source_one", true, false))
  expect.falsy(may_invite(config, "@test:source_one", "@x:source_one", false, false))
end)
