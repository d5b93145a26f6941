-- Answers from the server's own user directory, a Go value the server
-- exposes to every module as host.users (engine.Options.Expose).
local M = {}
function M.init(api)
  api.register_web_resource("/_synapse/client/whois", function(request)
    local user = request.query.user or ""
    local dept, err = host.users:Department(user) -- a synchronous Go method
    if err ~= nil then
      error({ status = 404, errcode = "M_NOT_FOUND", error = err:Error() })
    end
    return { status = 200, json = { user_id = user, department = dept } }
  end)
end
return M
