-- expiry: account validity. Users listed in config.expired are expired;
-- everyone else is left to the next module (nil).
local M = {}

function M.init(api, config)
  local expired = {}
  for _, u in ipairs(config.expired or {}) do expired[api.get_qualified_user_id(u)] = true end
  local logins = 0

  api.register_account_validity_callbacks{
    is_user_expired = function(user_id)
      if expired[user_id] then return true end
      return nil
    end,
    on_user_login = function(user_id, auth_provider_type, auth_provider_id)
      logins = logins + 1
      api.log.info("login #%d: %s via %s", logins, user_id, tostring(auth_provider_type))
    end,
  }
end

return M
