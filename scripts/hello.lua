-- hello: a web resource with a method table, a sub-path and a JSON body.
local M = {}

function M.parse_config(config, api)
  if config.greeting ~= nil and type(config.greeting) ~= "string" then
    error("greeting must be a string")
  end
  return { greeting = config.greeting or "hello" }
end

function M.init(api, config)
  local served = 0  -- module state: one Lua state per module by default

  api.register_web_resource("/_synapse/client/hello", {
    GET = function(request)
      served = served + 1
      local name = request.query.name or request.subpath:match("^/([^/]+)") or "world"
      return { status = 200, json = { message = config.greeting .. ", " .. name, served = served } }
    end,
    POST = function(request)
      if request.json == nil then
        error({ status = 400, errcode = "M_NOT_JSON", error = "send a JSON body" })
      end
      return { status = 200, json = { echo = request.json, server = api.server_name } }
    end,
  })
end

return M
