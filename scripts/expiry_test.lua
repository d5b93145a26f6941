-- Tests of expiry.lua.

test("listed users are expired, others have no opinion", function()
  local m = luamods.load("expiry.lua", { expired = { "olduser", "@gone:example.com" } })
  expect.eq(m:invoke("account_validity.is_user_expired", "@olduser:example.com"), true)
  expect.eq(m:invoke("account_validity.is_user_expired", "@gone:example.com"), true)
  expect.eq(m:invoke("account_validity.is_user_expired", "@alice:example.com"), nil)
end)

test("logins are logged", function()
  local m = luamods.load("expiry.lua")
  m:invoke("account_validity.on_user_login", "@alice:example.com", "m.login.password", nil)
  m:invoke("account_validity.on_user_login", "@alice:example.com", "m.login.sso", "oidc")
  expect.contains(m:logs(), "login #2: @alice:example.com via m.login.sso")
end)
