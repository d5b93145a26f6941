-- departments: the seed's caching example. Looks up a user's department in
-- an external service (config.service_url), memoized per user for
-- config.ttl seconds, and serves it at /_synapse/client/departments/<user>.
local M = {}

function M.parse_config(config, api)
  if type(config.service_url) ~= "string" then
    error("service_url is required (the department service's base URL)")
  end
  return { service_url = config.service_url, ttl = config.ttl or 300 }
end

function M.init(api, config)
  local get_department = api.cached(function(user_id)
    local answer = api.http_client.get_json(config.service_url .. "/department", { user_id = user_id })
    return answer.department
  end, { max_entries = 10000, ttl = config.ttl })
  api.register_cached_function(get_department)
  M.get_department = get_department

  api.register_web_resource("/_synapse/client/departments", function(request)
    local user = request.subpath:match("^/(.+)$")
    if not user then
      error({ status = 400, errcode = "M_MISSING_PARAM", error = "GET /_synapse/client/departments/<user_id>" })
    end
    if request.method == "DELETE" then
      api.invalidate_cache(get_department, { user })
      return { status = 200, json = {} }
    end
    return { status = 200, json = { user_id = user, department = get_department(user) } }
  end)
end

return M
