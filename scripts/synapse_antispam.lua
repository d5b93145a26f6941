-- synapse_antispam: a starting point for a Synapse operator who runs
-- synapse-http-antispam against luamods (docs/synapse.md). It refuses
-- invites from blocked servers, joins to blocked rooms (unless invited),
-- and messages that contain a blocked keyword or match a pattern.
--
-- In homeserver.yaml, enable exactly: user_may_invite, user_may_join_room,
-- check_event_for_spam.
local M = {}

local function list_of_strings(config, key)
  local v = config[key]
  if v == nil then return {} end
  if type(v) ~= "table" then error(key .. " must be a list of strings") end
  for i, s in ipairs(v) do
    if type(s) ~= "string" then error(key .. "[" .. i .. "] must be a string") end
  end
  return v
end

local function set_of(list, lower)
  local set = {}
  for _, s in ipairs(list) do set[lower and string.lower(s) or s] = true end
  return set
end

function M.parse_config(config, api)
  local patterns = {}
  for _, p in ipairs(list_of_strings(config, "keyword_patterns")) do
    patterns[#patterns + 1] = api.regex.compile(p) -- an invalid pattern is a config error naming it
  end
  local keywords = {}
  for _, k in ipairs(list_of_strings(config, "keywords")) do keywords[#keywords + 1] = string.lower(k) end
  return {
    invite_blocked_servers = set_of(list_of_strings(config, "invite_blocked_servers"), true),
    join_blocked_rooms = set_of(list_of_strings(config, "join_blocked_rooms")),
    join_blocked_servers = set_of(list_of_strings(config, "join_blocked_servers"), true),
    keywords = keywords,
    patterns = patterns,
  }
end

-- server_of("@a:example.com") == "example.com"
local function server_of(id)
  return type(id) == "string" and string.lower(id:match("^[^:]+:(.+)$") or "") or ""
end

function M.init(api, config)
  local refused = api.metrics.counter("synapse_antispam_refused_total", "Requests synapse_antispam refused", { "rule" })

  local function check_invite(inviter, invitee, room_id)
    -- Synapse asks this for remote invites too, so one rule covers both.
    if config.invite_blocked_servers[server_of(inviter)] then
      refused:inc({ rule = "invite" })
      api.log.info("refusing invite from %s to %s in %s", inviter, tostring(invitee), tostring(room_id))
      return api.errors.FORBIDDEN, { error = "Invites from " .. server_of(inviter) .. " are blocked on this server" }
    end
    return api.NOT_SPAM
  end

  api.register_spam_checker_callbacks{
    user_may_invite = check_invite,

    user_may_join_room = function(user_id, room_id, is_invited)
      if is_invited then return api.NOT_SPAM end
      if config.join_blocked_rooms[room_id] or config.join_blocked_servers[server_of(room_id)] then
        refused:inc({ rule = "join" })
        return api.errors.FORBIDDEN, { error = "This room is blocked on this server" }
      end
      return api.NOT_SPAM
    end,

    check_event_for_spam = function(event)
      local body = type(event.content) == "table" and event.content.body
      if type(body) ~= "string" then return api.NOT_SPAM end
      local lower = string.lower(body)
      for _, k in ipairs(config.keywords) do
        if string.find(lower, k, 1, true) then
          refused:inc({ rule = "keyword" })
          api.log.info("refusing event %s from %s: keyword", tostring(event.event_id), tostring(event.sender))
          return api.errors.FORBIDDEN, { error = "Your message was blocked by this server's content filter" }
        end
      end
      for _, re in ipairs(config.patterns) do
        if re:search(body) then
          refused:inc({ rule = "pattern" })
          api.log.info("refusing event %s from %s: pattern", tostring(event.event_id), tostring(event.sender))
          return api.errors.FORBIDDEN, { error = "Your message was blocked by this server's content filter" }
        end
      end
      return api.NOT_SPAM
    end,
  }
end

return M
