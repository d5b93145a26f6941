-- wrk script of tools/bench/compare.sh: POSTs the JSON file named after
-- "--" (wrk ... -s post.lua URL -- body.json).
function init(args)
  local f = assert(io.open(args[1], "rb"))
  wrk.method = "POST"
  wrk.body = f:read("*a")
  wrk.headers["Content-Type"] = "application/json"
  f:close()
end
