-- password_login: a password auth provider that asks an external service
-- (config.service_url) whether a password is right, like Synapse's LDAP or
-- REST auth providers. When the service fails, the module gives no opinion
-- and the homeserver's own password check (or another provider) decides.
local M = {}

function M.parse_config(config, api)
  if type(config.service_url) ~= "string" then
    error("service_url is required")
  end
  return { service_url = config.service_url }
end

function M.init(api, config)
  local function check(username, login_type, login)
    local user_id = api.get_qualified_user_id(username)
    local ok, answer = pcall(api.http_client.post_json_get_json, config.service_url .. "/check",
      { user = user_id, password = login.password })
    if not ok then
      api.log.warn("password service failed for %s: %s", user_id, tostring(answer.code or answer))
      return nil   -- let other providers (or the homeserver's own passwords) decide
    end
    if answer.valid == true then
      return user_id
    end
    return nil
  end

  api.register_password_auth_provider_callbacks{
    auth_checkers = {
      ["m.login.password"] = { fields = { "password" }, check = check },
    },
  }
end

return M
