-- The realistic route of tools/bench/compare.sh: a 2 KB JSON POST
-- {text=, tags=}: the text lower-cased, its words counted with gmatch and
-- checked against a banned-word set, the 20 tags upper-cased, a JSON reply.
-- tools/bench/twin/main.go is the same route written in Go.
local M = {}

local banned = {}
for _, w in ipairs({ "viagra", "casino", "lottery", "bitcoin", "prize", "winner", "free", "offer", "loan", "crypto" }) do
  banned[w] = true
end

function M.init(api)
  api.register_web_resource("/bench/realistic", function(request)
    local doc = request.json
    local text = string.lower(doc.text)
    local words, hits = 0, 0
    for word in string.gmatch(text, "%a+") do
      words = words + 1
      if banned[word] then
        hits = hits + 1
      end
    end
    local tags = {}
    for i, tag in ipairs(doc.tags) do
      tags[i] = string.upper(tag)
    end
    return { status = 200, json = { words = words, banned = hits, tags = tags } }
  end)
end

return M
