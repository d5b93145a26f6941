-- account_validity: the renewal-token part of synapse-email-account-validity,
-- kept in the database with api.run_db_interaction, so that it survives a
-- restart and every luamods process sharing the database agrees.
--
-- An account expires `period` after registration (or its last renewal).
-- on_legacy_send_mail gives the user a fresh renewal token by mail; the
-- link /_synapse/client/email_account_validity/renew?token=... (or Synapse's
-- on_legacy_renew) renews the account once per token.
local M = {}

-- Synapse's durations: a number is milliseconds; "30s", "10m", "6h", "7d",
-- "6w", "1y" carry a unit.
local UNITS = { s = 1000, m = 60000, h = 3600000, d = 86400000, w = 604800000, y = 31536000000 }

local function duration_ms(v, name)
  if type(v) == "number" then return v end
  local n, unit = tostring(v):match("^(%d+)([smhdwy])$")
  if not n then error(name .. ": expected a duration such as 6w or 30d, not " .. tostring(v), 0) end
  return tonumber(n) * UNITS[unit]
end

function M.parse_config(config)
  return {
    period = duration_ms(config.period or "6w", "period"),
    renewal_path = "/_synapse/client/email_account_validity/renew",
    subject = config.subject or "Renew your account",
  }
end

function M.init(api, config)
  -- The schema, in SQL that runs on SQLite and PostgreSQL alike.
  api.run_db_interaction("account_validity_create_table", function(txn)
    txn:execute([[CREATE TABLE IF NOT EXISTS email_account_validity (
      user_id TEXT PRIMARY KEY,
      expiration_ts_ms BIGINT NOT NULL,
      email_sent INTEGER NOT NULL DEFAULT 0,
      renewal_token TEXT,
      token_used_ts_ms BIGINT)]])
    txn:execute([[CREATE UNIQUE INDEX IF NOT EXISTS email_account_validity_token
      ON email_account_validity (renewal_token)]])
  end)

  local function now() return api.get_current_time_msec() end

  -- renew(token) → token_valid, token_stale, expiration_ts_ms, as Synapse's
  -- on_legacy_renew: a known token renews the account once; used again it
  -- is stale.
  local function renew(token)
    return api.run_db_interaction("account_validity_renew", function(txn)
      txn:execute([[SELECT user_id, expiration_ts_ms, token_used_ts_ms
        FROM email_account_validity WHERE renewal_token = ?]], token)
      local row = txn:fetchone()
      if row == nil then return false, false, 0 end
      local user_id, expiration, used = row[1], row[2], row[3]
      if used ~= nil then return true, true, expiration end
      local t = now()
      expiration = t + config.period
      txn:execute([[UPDATE email_account_validity
        SET expiration_ts_ms = ?, token_used_ts_ms = ?, email_sent = 0 WHERE user_id = ?]],
        expiration, t, user_id)
      return true, false, expiration
    end)
  end

  api.register_account_validity_callbacks{
    on_user_registration = function(user_id)
      api.run_db_interaction("account_validity_register", function(txn)
        txn:execute([[INSERT INTO email_account_validity (user_id, expiration_ts_ms)
          VALUES (?, ?) ON CONFLICT (user_id) DO NOTHING]], user_id, now() + config.period)
      end)
    end,

    is_user_expired = function(user_id)
      return api.run_db_interaction("account_validity_is_expired", function(txn)
        txn:execute("SELECT expiration_ts_ms FROM email_account_validity WHERE user_id = ?", user_id)
        local row = txn:fetchone()
        if row == nil then return nil end -- not ours: the next module decides
        return row[1] <= now()
      end)
    end,

    on_legacy_send_mail = function(user_id)
      local token = api.crypto.random_token()
      api.run_db_interaction("account_validity_new_token", function(txn)
        txn:execute([[UPDATE email_account_validity
          SET renewal_token = ?, token_used_ts_ms = NULL, email_sent = 1 WHERE user_id = ?]], token, user_id)
        if txn.rowcount == 0 then error("no expiration date for " .. user_id) end
      end)
      local link = api.public_baseurl:gsub("/$", "") .. config.renewal_path .. "?token=" .. token
      for _, threepid in ipairs(api.get_threepids_for_user(user_id) or {}) do
        if threepid.medium == "email" then
          api.send_mail(threepid.address, config.subject,
            "<p>Renew your account: <a href=\"" .. link .. "\">" .. link .. "</a></p>",
            "Renew your account: " .. link)
        end
      end
    end,

    on_legacy_renew = renew,
  }

  api.register_web_resource(config.renewal_path, function(request)
    local valid, stale = renew(request.query.token or "")
    if not valid then
      return { status = 404, body = "This renewal link is not valid.", headers = { ["content-type"] = "text/plain" } }
    end
    if stale then
      return { status = 200, body = "Your account has already been renewed.", headers = { ["content-type"] = "text/plain" } }
    end
    return { status = 200, body = "Your account has been successfully renewed.", headers = { ["content-type"] = "text/plain" } }
  end)
end

return M
