package luaapi

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// BenchmarkPatterns runs the pattern builtins over the realistic route's
// 2 KB text (tools/bench/realistic.json, lower-cased): one op is one call
// of a callback that walks the whole text once.
func BenchmarkPatterns(b *testing.B) {
	raw, err := os.ReadFile("../tools/bench/realistic.json")
	if err != nil {
		b.Fatal(err)
	}
	var doc struct{ Text string }
	if err := json.Unmarshal(raw, &doc); err != nil {
		b.Fatal(err)
	}
	text := strings.ToLower(doc.Text)
	for _, bc := range []struct{ name, body string }{
		{"gmatch_words", `local n = 0 for w in string.gmatch(text, "%a+") do n = n + 1 end return n`},
		{"gmatch_captures", `local n = 0 for a, b in string.gmatch(text, "(%a+) (%a+)") do n = n + 1 end return n`},
		{"find_loop", `local n, i = 0, 1 while true do local s, e = string.find(text, "[^%s]+", i) if not s then return n end n, i = n + 1, e + 1 end`},
		{"gsub_spaces", `local _, n = string.gsub(text, "%s+", " ") return n`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, _ := newTestState(b, `local M = {}
function M.init(api) api.register_spam_checker_callbacks{ run = function(text) `+bc.body+` end } end
return M`, nil)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				res, err := s.Call(ctx, "cb:spam_checker.run", text)
				if err != nil || res[0].(int64) < 100 {
					b.Fatal(res, err)
				}
			}
		})
	}
}
