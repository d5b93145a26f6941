-- Tests of password_login.lua.

local service = "https://auth.example"

test("a right password logs the user in", function()
  local m = luamods.load("password_login.lua", { service_url = service })
  m.http:answer("POST", service .. "/check", { json = { valid = true } })
  local user_id = m:invoke("password_auth_provider.auth_checkers", "alice", "m.login.password", { password = "s3cret", device_id = "D" })
  expect.eq(user_id, "@alice:example.com")
  local sent = m.http:requests()[1]
  expect.eq(sent.method, "POST")
  expect.contains(sent.body, '"password":"s3cret"')
  expect.contains(sent.body, '"user":"@alice:example.com"')
end)

test("a wrong password, or a failing service, gives no opinion", function()
  local m = luamods.load("password_login.lua", { service_url = service })
  m.http:answer("POST", service .. "/check", { json = { valid = false } })
  expect.eq(m:invoke("password_auth_provider.auth_checkers", "alice", "m.login.password", { password = "nope" }), nil)
  m.http:answer("POST", service .. "/check", { status = 502, body = "bad gateway" })
  expect.eq(m:invoke("password_auth_provider.auth_checkers", "alice", "m.login.password", { password = "x" }), nil)
  expect.contains(m:logs(), "password service failed for @alice:example.com: 502")
end)

test("a missing password field is refused before the module runs", function()
  local m = luamods.load("password_login.lua", { service_url = service })
  expect.error(function()
    m:invoke("password_auth_provider.auth_checkers", "alice", "m.login.password", {})
  end, "Missing parameters for login type m.login.password")
  expect.eq(#m.http:requests(), 0)
end)

test("other login types are not handled", function()
  local m = luamods.load("password_login.lua", { service_url = service })
  expect.eq(m:invoke("password_auth_provider.auth_checkers", "alice", "m.login.token", { token = "t" }), nil)
end)
