-- room_rules: third-party rules. Refuses events of forbidden types, keeps
-- rooms private unless their creator is an admin, and turns encryption on
-- in every new room.
local M = {}

function M.parse_config(config, api)
  local forbidden = {}
  for _, t in ipairs(config.forbidden_event_types or {}) do forbidden[t] = true end
  return { forbidden = forbidden, public_rooms_for_admins_only = config.public_rooms_for_admins_only ~= false }
end

function M.init(api, config)
  api.register_third_party_rules_callbacks{
    check_event_allowed = function(event, state_events)
      if config.forbidden[event.type] then
        return false
      end
      if event.type == "m.room.message" and type(event.content) == "table" and event.content.body == "/shrug" then
        -- allowed, and replaced: the module rewrites the message
        event.content.body = "¯\\_(ツ)_/¯"
        return true, event
      end
      return true
    end,

    on_create_room = function(requester, request_content, is_requester_admin)
      if request_content.visibility == "public" and config.public_rooms_for_admins_only and not is_requester_admin then
        error({ status = 403, errcode = "M_FORBIDDEN", error = "Only admins may create public rooms" })
      end
      request_content.initial_state = request_content.initial_state or api.json.array()
      table.insert(request_content.initial_state, {
        type = "m.room.encryption", state_key = "", content = { algorithm = "m.megolm.v1.aes-sha2" },
      })
    end,

    check_visibility_can_be_modified = function(room_id, state_events, new_visibility)
      return new_visibility ~= "public" or not config.public_rooms_for_admins_only
    end,
  }
end

return M
