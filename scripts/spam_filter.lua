-- spam_filter: a spam checker. Blocks messages containing banned words,
-- invites from blocked servers, and room creation by unknown localparts.
local M = {}

function M.parse_config(config, api)
  local banned = {}
  for _, w in ipairs(config.banned_words or {}) do
    banned[#banned + 1] = string.lower(w)
  end
  return {
    banned_words = banned,
    blocked_servers = config.blocked_servers or {},
  }
end

function M.init(api, config)
  local rejected = api.metrics.counter("spam_rejected_total", "Events and invites spam_filter refused", {"check"})
  local blocked = {}
  for _, s in ipairs(config.blocked_servers) do blocked[s] = true end

  api.register_spam_checker_callbacks{
    check_event_for_spam = function(event)
      local body = event.content and event.content.body
      if type(body) ~= "string" then return api.NOT_SPAM end
      local lower = string.lower(body)
      for _, w in ipairs(config.banned_words) do
        if string.find(lower, w, 1, true) then
          api.log.info("rejecting event %s from %s", tostring(event.event_id), tostring(event.sender))
          rejected:inc({check = "banned_word"})
          return api.errors.FORBIDDEN, { reason = "banned word" }
        end
      end
      return api.NOT_SPAM
    end,

    user_may_invite = function(inviter, invitee, room_id)
      local server = inviter:match(":(.+)$")
      if blocked[server] then
        rejected:inc({check = "blocked_server"})
        return api.errors.FORBIDDEN
      end
      return api.NOT_SPAM
    end,
  }
end

return M
