-- auto_accept_invite: local users accept the invites they get, the way
-- synapse-auto-accept-invite does it, written for luamods from that
-- module's documented behaviour.
--
--   config:
--     accept_invites_only_for_direct_messages: false  # only invites with is_direct
--     accept_invites_only_from_local_users: false     # only invites sent by local users
--     worker_to_run_on: null                          # api.worker_name that does the work
--     join_attempts: 5                                # tries before giving up
--     join_backoff: 1                                 # seconds before the 2nd try; doubles
--
-- A direct-message invite is also recorded in the invitee's m.direct
-- account data, so that clients show the room as a DM.

local M = {}

local api, config

local function check(c, key, kind, default)
  local v = c[key]
  if v == nil then return default end
  if type(v) ~= kind then
    error(string.format("%s must be a %s, not a %s", key, kind, type(v)), 0)
  end
  return v
end

function M.parse_config(c)
  local out = {
    direct_messages_only = check(c, "accept_invites_only_for_direct_messages", "boolean", false),
    local_senders_only = check(c, "accept_invites_only_from_local_users", "boolean", false),
    worker = check(c, "worker_to_run_on", "string", nil),
    attempts = check(c, "join_attempts", "number", 5),
    backoff = check(c, "join_backoff", "number", 1),
  }
  if out.attempts < 1 then error("join_attempts must be at least 1", 0) end
  if out.backoff < 0 then error("join_backoff must not be negative", 0) end
  return out
end

-- join makes the invitee join, retrying with a doubling pause: the invite
-- may reach us before the room is ready to be joined (over federation).
local function join(invitee, room_id)
  local pause = config.backoff
  for attempt = 1, config.attempts do
    local ok, err = pcall(api.update_room_membership, invitee, invitee, room_id, "join")
    if ok then
      api.log.info("%s accepted the invite to %s", invitee, room_id)
      return true
    end
    local why = type(err) == "table" and (err.error or err.errcode) or tostring(err)
    if attempt == config.attempts then
      api.log.warn("%s could not join %s after %d attempts: %s", invitee, room_id, attempt, why)
      return false
    end
    api.log.info("%s could not join %s (attempt %d: %s); retrying in %gs", invitee, room_id, attempt, why, pause)
    api.sleep(pause)
    pause = pause * 2
  end
end

-- mark_direct adds room_id to the invitee's m.direct under the inviter.
local function mark_direct(invitee, inviter, room_id)
  local current = api.account_data_manager.get_global(invitee, "m.direct") or {}
  local updated = {}
  for user, rooms in pairs(current) do updated[user] = rooms end
  local rooms = {}
  for _, r in ipairs(updated[inviter] or {}) do
    if r == room_id then return end
    rooms[#rooms + 1] = r
  end
  rooms[#rooms + 1] = room_id
  updated[inviter] = rooms
  api.account_data_manager.put_global(invitee, "m.direct", updated)
end

-- on_new_event sees every event; it acts on invites of local users.
function M.on_new_event(event, state_events)
  if event.type ~= "m.room.member" or type(event.state_key) ~= "string" then return end
  local content = event.content or {}
  if content.membership ~= "invite" then return end
  local invitee, inviter = event.state_key, event.sender
  if invitee == inviter or not api.is_mine(invitee) then return end
  if config.local_senders_only and not api.is_mine(inviter) then return end
  local direct = content.is_direct == true
  if config.direct_messages_only and not direct then return end
  if config.worker ~= api.worker_name then return end
  if join(invitee, event.room_id) and direct then
    mark_direct(invitee, inviter, event.room_id)
  end
end

function M.init(a, c)
  api, config = a, c
  api.register_third_party_rules_callbacks{ on_new_event = M.on_new_event }
end

return M
