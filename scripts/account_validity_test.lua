-- Tests of account_validity.lua. Each test file gets a fresh SQLite
-- database, shared by its tests; every luamods.load below starts a new
-- engine on it, as a restarted process would.

local DAY = 86400

local function token_of(m)
  local calls = m.host:calls("send_mail")
  local last = calls[#calls]
  return last.args[4]:match("token=([%w_-]+)")
end

test("a registered account expires after its period", function()
  local m = luamods.load("account_validity.lua", { period = "30d" })
  m:invoke("account_validity.on_user_registration", "@alice:example.com")
  expect.eq(m:invoke("account_validity.is_user_expired", "@alice:example.com"), false)
  expect.eq(m:invoke("account_validity.is_user_expired", "@stranger:example.com"), nil)
  m.clock:advance(31 * DAY)
  expect.eq(m:invoke("account_validity.is_user_expired", "@alice:example.com"), true)
end)

test("the expiry date survives a restart", function()
  local m = luamods.load("account_validity.lua", { period = "30d" })
  m:invoke("account_validity.on_user_registration", "@bob:example.com")
  -- A second load is a new engine on the same database: alice (from the
  -- previous test) and bob are still known.
  local again = luamods.load("account_validity.lua", { period = "30d" })
  expect.eq(again:invoke("account_validity.is_user_expired", "@bob:example.com"), false)
  expect.eq(again:invoke("account_validity.is_user_expired", "@alice:example.com") ~= nil, true)
end)

test("a renewal token renews the account once", function()
  local m = luamods.load("account_validity.lua", { period = "1w" })
  m.host:answer("get_threepids_for_user", { { medium = "email", address = "carol@example.org" } })
  m.host:answer("send_mail", nil)
  m:invoke("account_validity.on_user_registration", "@carol:example.com")
  m.clock:advance(8 * DAY)
  expect.eq(m:invoke("account_validity.is_user_expired", "@carol:example.com"), true)

  m:invoke("account_validity.on_legacy_send_mail", "@carol:example.com")
  local mail = m.host:calls("send_mail")[1]
  expect.eq(mail.args[1], "carol@example.org")
  local token = token_of(m)
  expect.eq(#token >= 40, true)

  local page = m:request("GET", "/_synapse/client/email_account_validity/renew?token=" .. token)
  expect.eq(page.status, 200)
  expect.contains(page.body, "successfully renewed")
  expect.eq(m:invoke("account_validity.is_user_expired", "@carol:example.com"), false)

  -- Used again, the token is stale; an unknown one is invalid.
  local valid, stale = m:invoke("account_validity.on_legacy_renew", token)
  expect.eq(valid, true)
  expect.eq(stale, true)
  expect.eq(m:request("GET", "/_synapse/client/email_account_validity/renew?token=nope").status, 404)
end)

test("mail for an unknown user is an error and changes nothing", function()
  local m = luamods.load("account_validity.lua")
  local ok, err = pcall(m.invoke, m, "account_validity.on_legacy_send_mail", "@nobody:example.com")
  expect.eq(ok, false)
  expect.contains(tostring(err), "no expiration date for @nobody:example.com")
end)

test("a bad period is a config error", function()
  local ok, err = pcall(luamods.load, "account_validity.lua", { period = "soon" })
  expect.eq(ok, false)
  expect.contains(tostring(err), "period: expected a duration")
end)
