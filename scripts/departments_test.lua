-- Tests of departments.lua: fake HTTP, the cache, and the virtual clock.

local service = "https://dept.example"

local function load()
  local m = luamods.load("departments.lua", { service_url = service, ttl = 60 })
  m.http:answer("GET", service .. "/department?user_id=%40alice%3Aexample.com", { json = { department = "eng" } })
  return m
end

test("looks a department up once and serves it from the cache", function()
  local m = load()
  for _ = 1, 3 do
    local r = m:request("GET", "/_synapse/client/departments/@alice:example.com")
    expect.eq(r.status, 200)
    expect.eq(r.json, { user_id = "@alice:example.com", department = "eng" })
  end
  expect.eq(#m.http:requests(), 1, "one request to the service for three lookups")
end)

test("the cache expires after ttl seconds of virtual time", function()
  local m = load()
  m:call("get_department", "@alice:example.com")
  m.clock:advance(59)
  m:call("get_department", "@alice:example.com")
  expect.eq(#m.http:requests(), 1)
  m.clock:advance(2)
  expect.eq(m:call("get_department", "@alice:example.com"), "eng")
  expect.eq(#m.http:requests(), 2, "looked up again after the TTL")
end)

test("DELETE invalidates the user's entry", function()
  local m = load()
  m:request("GET", "/_synapse/client/departments/@alice:example.com")
  expect.eq(m:request("DELETE", "/_synapse/client/departments/@alice:example.com").status, 200)
  m:request("GET", "/_synapse/client/departments/@alice:example.com")
  expect.eq(#m.http:requests(), 2)
end)

test("a failing service is a 500 and is not cached", function()
  local m = luamods.load("departments.lua", { service_url = service })
  m.http:answer("GET", service .. "/department", { status = 503, body = "down" })
  expect.eq(m:request("GET", "/_synapse/client/departments/@bob:example.com").status, 500)
  expect.contains(m:logs(), "error {code=503, msg=Service Unavailable}")
  expect.contains(m:logs(), "departments.lua:15")
  m.http:answer("GET", service .. "/department", { json = { department = "ops" } })
  expect.eq(m:request("GET", "/_synapse/client/departments/@bob:example.com").json.department, "ops")
end)

test("service_url is required", function()
  expect.error(function() luamods.load("departments.lua", {}) end, "service_url is required")
end)
