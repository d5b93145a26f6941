-- The Lua twin of the server's native GET /native/hello.
local M = {}
function M.init(api)
  api.register_web_resource("/_synapse/client/hello", function(request)
    return { status = 200, json = { message = "hello, " .. (request.query.name or "world") } }
  end)
end
return M
