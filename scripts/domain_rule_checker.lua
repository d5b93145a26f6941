-- domain_rule_checker: prevents invites and joins by checking the servers
-- involved. A line-by-line port of matrix-org/synapse-domain-rule-checker
-- (synapse_domain_rule_checker/__init__.py, Copyright 2021 The Matrix.org
-- Foundation C.I.C., Apache License 2.0), kept in the original's order so
-- the two read side by side; docs/porting-from-synapse.md walks through it.
--
-- modules:
--   - module: domain_rule_checker.lua
--     config:
--       domain_mapping: {inviter_domain: [invitee_domain, ...]}
--       can_invite_if_not_in_domain_mapping: false   # required
--       can_only_join_rooms_with_invite: false
--       can_only_invite_during_room_creation: false
--       domains_prevented_from_being_invited_to_published_rooms: []
--       can_invite_by_third_party_id: true
local M = {}

-- class EventTypes / class Membership
local EventTypes = {Create = "m.room.create", Member = "m.room.member"}
local Membership = {INVITE = "invite"}

-- @attr.s class DomainRuleCheckerConfig: the fields and their defaults.
-- (attrs refuses unknown fields and a missing required one; parse_config
-- does the same below.)
local defaults = {
  can_invite_if_not_in_domain_mapping = nil, -- required
  domain_mapping = nil,
  can_only_join_rooms_with_invite = false,
  can_only_invite_during_room_creation = false,
  can_invite_by_third_party_id = true,
  domains_prevented_from_being_invited_to_published_rooms = nil,
}
local fields = {
  "can_invite_if_not_in_domain_mapping", "domain_mapping", "can_only_join_rooms_with_invite",
  "can_only_invite_during_room_creation", "can_invite_by_third_party_id",
  "domains_prevented_from_being_invited_to_published_rooms",
}

-- _get_domain_from_id (a @staticmethod): the server part of an ID.
local function get_domain_from_id(mxid)
  local idx = mxid:find(":", 1, true)
  if idx == nil then
    error(string.format("Invalid ID: %q", mxid))
  end
  return mxid:sub(idx + 1)
end

-- parse_config (a @staticmethod): checks the required field and fills in
-- the defaults.
function M.parse_config(config)
  if config.can_invite_if_not_in_domain_mapping == nil then
    error("DomainRuleChecker: can_invite_if_not_in_domain_mapping is required")
  end
  local known = {}
  for _, name in ipairs(fields) do known[name] = true end
  for name in pairs(config) do
    if not known[name] then
      error(string.format("DomainRuleChecker: unexpected option %q", name))
    end
  end
  local parsed = {}
  for _, name in ipairs(fields) do
    local v = config[name]
    if v == nil then v = defaults[name] end
    parsed[name] = v
  end
  return parsed
end

-- __init__: self._config, self._domain_mapping, ... become upvalues.
function M.init(api, config)
  local domain_mapping = config.domain_mapping or {}
  local prevented = {} -- a set: `x in list` becomes prevented[x]
  for _, d in ipairs(config.domains_prevented_from_being_invited_to_published_rooms or {}) do
    prevented[d] = true
  end
  local function contains(list, x)
    for _, v in ipairs(list) do
      if v == x then return true end
    end
    return false
  end

  -- _is_new_room: whether the only members are the creator and those it
  -- invited. `await` disappears: api.get_room_state waits by itself.
  local function is_new_room(room_id)
    local state_event_filter = {
      {EventTypes.Create, api.json.null},
      {EventTypes.Member, api.json.null},
    }
    local events = api.get_room_state(room_id, state_event_filter)

    -- events.get((EventTypes.Create, "")) on a StateMap is events[type][state_key].
    local create_event = (events[EventTypes.Create] or {})[""]
    if create_event == nil then
      -- An invite received over federation for a room we are not in yet: the
      -- remote homeserver, which knows the room's state, has vetted it.
      return false
    end

    local room_creator = create_event.sender

    -- `for key, event in events.items()` over (type, state_key) keys is two
    -- loops; the create events are skipped by looking at members only.
    for state_key, event in pairs(events[EventTypes.Member] or {}) do
      if state_key ~= room_creator then
        -- event.membership is event.content.membership in the event's JSON.
        if event.sender ~= room_creator and event.content.membership ~= Membership.INVITE then
          return false
        end
      end
    end

    return true
  end

  -- _user_may_invite: both Matrix and 3PID invites (invitee_userid nil).
  local function user_may_invite_(room_id, inviter_userid, invitee_userid)
    local inviter_domain = get_domain_from_id(inviter_userid)

    if config.can_only_invite_during_room_creation
      -- Only for rooms created locally: a remote invite's room cannot be
      -- judged new reliably.
      and inviter_domain == api.server_name then
      if not is_new_room(room_id) then
        return false
      end
    end

    -- A 3PID invite (no MXID yet): allowed unless the configuration blocks them.
    if invitee_userid == nil then
      return config.can_invite_by_third_party_id
    end

    local invitee_domain = get_domain_from_id(invitee_userid)

    local published_room = api.public_room_list_manager.room_is_in_public_room_list(room_id)

    if published_room and prevented[invitee_domain] then
      return false
    end

    if domain_mapping[inviter_domain] == nil then
      return config.can_invite_if_not_in_domain_mapping
    end

    return contains(domain_mapping[inviter_domain], invitee_domain)
  end

  -- register_spam_checker_callbacks(user_may_invite=self.user_may_invite, ...):
  -- a table of name = function. Booleans are answers as in Synapse's code:
  -- true lets the invite through, false refuses it (M_FORBIDDEN).
  api.register_spam_checker_callbacks{
    user_may_invite = function(inviter_userid, invitee_userid, room_id)
      return user_may_invite_(room_id, inviter_userid, invitee_userid)
    end,
    user_may_send_3pid_invite = function(inviter_userid, medium, address, room_id)
      return user_may_invite_(room_id, inviter_userid, nil)
    end,
    user_may_join_room = function(userid, room_id, is_invited)
      if config.can_only_join_rooms_with_invite and not is_invited then
        return false
      end
      return true
    end,
  }
end

return M
