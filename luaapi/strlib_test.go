package luaapi

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestStringLibraryMatchesLua51: the replaced builtins (patterns, gsub,
// format, byte, rep, concat, unpack) give what Lua 5.1.5 gives; the expected
// values were printed by lua5.1 itself.
func TestStringLibraryMatchesLua51(t *testing.T) {
	cases := []struct{ expr, want string }{
		{`string.find("hello world", "o w")`, `[5,7]`},
		{`os.date("!%Y-%m-%d %H", 86400)`, `["1970-01-02 00"]`},
		{`string.find("hello world", "l+")`, `[3,4]`},
		{`string.find("hello", "l", -2)`, `[4,4]`},
		{`string.find("hello", "", 10)`, `[6,5]`},
		{`string.find("a.b", ".", 1, true)`, `[2,2]`},
		{`string.find("abc", "^b")`, `[null]`},
		{`string.find("key = value", "(%w+)%s*=%s*(%w+)")`, `[1,11,"key","value"]`},
		{`string.find("abc", "()b()")`, `[2,2,2,3]`},
		{`string.match("hello 123 world", "%d+")`, `["123"]`},
		{`string.match("  trim  ", "^%s*(.-)%s*$")`, `["trim"]`},
		{`string.match("2024-01-02", "(%d+)-(%d+)-(%d+)")`, `["2024","01","02"]`},
		{`string.match("THE (quick) fox", "%((%a+)%)")`, `["quick"]`},
		{`string.match("f(a(b)c)d", "%b()")`, `["(a(b)c)"]`},
		{`string.match("THE quick", "%f[%a]%a+", 4)`, `["quick"]`},
		{`string.match("aaa", "a-b")`, `[null]`},
		{`string.match("aaab", "a-b")`, `["aaab"]`},
		{`string.match("x=1, y=2", "(%w)=(%d)", 5)`, `["y","2"]`},
		{`string.match("abcabc", "(abc)%1")`, `["abc"]`},
		{`string.match("[]", "[]]")`, `["]"]`},
		{`string.match("a-b", "[a%-]+")`, `["a-"]`},
		{`string.match("hello", "[^%s]+")`, `["hello"]`},
		{`string.match("0x1F", "^0[xX](%x+)$")`, `["1F"]`},
		{`string.match("end", "d$")`, `["d"]`},
		{`string.match("a$b", "a$b")`, `["a$b"]`},
		{`string.gsub("hello world", "o", "0")`, `["hell0 w0rld",2]`},
		{`string.gsub("hello world", "(%w+)", "<%1>")`, `["<hello> <world>",2]`},
		{`string.gsub("hello", "", "-")`, `["-h-e-l-l-o-",6]`},
		{`string.gsub("abc", "%w", "%0%0")`, `["aabbcc",3]`},
		{`string.gsub("abc", "%w", "%1")`, `["abc",3]`},
		{`string.gsub("50%", "%%", "%% of")`, `["50% of",1]`},
		{`string.gsub("hello world", "(%w+) (%w+)", "%2 %1")`, `["world hello",1]`},
		{`string.gsub("abc", "()", "%1")`, `["1a2b3c4",4]`},
		{`string.gsub("a b c", "%w", "x", 2)`, `["x x c",2]`},
		{`string.gsub("$name is $age", "%$(%w+)", {name = "bob", age = 7})`, `["bob is 7",2]`},
		{`string.gsub("$name $none", "%$(%w+)", {name = "bob"})`, `["bob $none",2]`},
		{`string.gsub("abc", "%w", function(c) return c:upper() end)`, `["ABC",3]`},
		{`string.gsub("abc", "%w", function(c) if c == "b" then return false end return "x" end)`, `["xbx",3]`},
		{`string.gsub("nothing", "z", "y")`, `["nothing",0]`},
		{`string.gsub("aaa", "^a", "b")`, `["baa",1]`},
		{`string.gsub("abc", "b*", "-")`, `["-a--c-",4]`},
		{`string.gsub("abc", ".", 1)`, `["111",3]`},
		{`string.format("%d|%5d|%-5d|%05d|%+d|% d", 42, 42, 42, 42, 42, 42)`, `["42|   42|42   |00042|+42| 42"]`},
		{`string.format("%x|%X|%o|%#x|%u", 255, 255, 8, 255, 3.9)`, `["ff|FF|10|0xff|3"]`},
		{`string.format("%#x|%#X|%#o|%#5x|", 0, 0, 0, 0)`, `["0|0|0|    0|"]`},
		{`string.format("%e|%.2f|%g|%g|%G|%.3g", 12345.678, 3.14159, 1234567, 0.1, 1e-10, 2/3)`, `["1.234568e+04|3.14|1.23457e+06|0.1|1E-10|0.667"]`},
		{`string.format("%s|%10s|%-10s|%.2s|%5.1s|", "abc", "abc", "abc", "abc", "abc")`, `["abc|       abc|abc       |ab|    a|"]`},
		{`string.format("%q", 'a "quoted"\n\\ line\r\0end')`, `["\u0022a \u005c\u0022quoted\u005c\u0022\u005c\u000a\u005c\u005c line\u005cr\u005c000end\u0022"]`},
		{`string.format("%c%c%c", 76, 117, 97)`, `["Lua"]`},
		{`string.format("%%|%s|%d", 1.5, -7.9)`, `["%|1.5|-7"]`},
		{`string.format("%5.2f%%", 99.555)`, `["99.56%"]`},
		{`string.format("%s", string.rep("x", 120)):len()`, `[120]`},
		{`string.byte("ABC")`, `[65]`},
		{`string.byte("ABC", 2)`, `[66]`},
		{`string.byte("ABC", 1, -1)`, `[65,66,67]`},
		{`string.byte("ABC", -1)`, `[67]`},
		{`select("#", string.byte("ABC", 5))`, `[0]`},
		{`string.rep("ab", 3)`, `["ababab"]`},
		{`string.rep("", 1e10)`, `[""]`},
		{`string.rep("x", 0)`, `[""]`},
		{`string.rep("x", -1)`, `[""]`},
		{`table.concat({1, 2, "c"}, ", ")`, `["1, 2, c"]`},
		{`table.concat({1, 2, 3}, "-", 2)`, `["2-3"]`},
		{`table.concat({1, 2, 3}, "-", 2, 3)`, `["2-3"]`},
		{`table.concat({}, "x")`, `[""]`},
		{`table.concat({1, 2}, "", 3)`, `[""]`},
		{`unpack({1, 2, 3})`, `[1,2,3]`},
		{`unpack({1, 2, 3}, 2)`, `[2,3]`},
		{`unpack({1, 2, 3}, 2, 5)`, `[2,3,null,null]`},
		{`select("#", unpack({}, 1, 0))`, `[0]`},
		{`string.upper("abc"), string.lower("ABC"), string.reverse("abc")`, `["ABC","abc","cba"]`},
		{`string.rep("ab", 3, ",")`, `["ab,ab,ab"]`}, // Lua 5.2's separator
		{`string.find("abca", "()%1")`, `[null]`},    // found by fuzzing: a back-reference to a position
		{`string.find("-", "[0-0-0]")`, `[1,1]`},     // found by fuzzing: a range, then '-' as itself
		{`string.find("0", "[1--0]")`, `[1,1]`},      // found by fuzzing: an empty range '1'-'-'
		// one class, alone or repeated: matched by a linear scan (scanClass)
		{`(function(s, p) local t = {} for a, b in string.gmatch(s, p) do t[#t+1] = b and (a .. "=" .. b) or a end return table.concat(t, "|") end)("one, two;three  four", "%a+")`, `["one|two|three|four"]`},
		{`(function(s, p) local t = {} for a, b in string.gmatch(s, p) do t[#t+1] = b and (a .. "=" .. b) or a end return table.concat(t, "|") end)("a,b,,c", "[^,]+")`, `["a|b|c"]`},
		{`(function(s, p) local t = {} for a, b in string.gmatch(s, p) do t[#t+1] = b and (a .. "=" .. b) or a end return table.concat(t, "|") end)("a b", "%s*")`, `["| ||"]`},
		{`(function(s, p) local t = {} for a, b in string.gmatch(s, p) do t[#t+1] = b and (a .. "=" .. b) or a end return table.concat(t, "|") end)("abc", ".")`, `["a|b|c"]`},
		{`(function(s, p) local t = {} for a, b in string.gmatch(s, p) do t[#t+1] = b and (a .. "=" .. b) or a end return table.concat(t, "|") end)("^a^a", "^a")`, `["^a|^a"]`},
		{`(function(s, p) local t = {} for a, b in string.gmatch(s, p) do t[#t+1] = b and (a .. "=" .. b) or a end return table.concat(t, "|") end)("k=v, x=y", "(%w+)=(%w+)")`, `["k=v|x=y"]`},
		{`(function() local n = 0 for w in string.gmatch(string.rep("ab, ", 200), "%a+") do n = n + 1 end return n end)()`, `[200]`},
		{`string.gsub("a  b   c", "%s+", " ")`, `["a b c",2]`},
		{`string.gsub("abc", "%s*", "-")`, `["-a-b-c-",4]`},
		{`string.gsub("  x", "^%s*", "")`, `["x",1]`},
		{`string.find(string.rep("x", 300) .. "42", "%d+")`, `[301,302]`},
		{`string.find(string.rep("x", 300) .. "42", "%d+", 302)`, `[302,302]`},
		{`string.match(string.rep(" ", 300) .. "word  ", "%S+")`, `["word"]`},
		{`string.find("abc", "[b-c]")`, `[2,2]`},
		{`string.match("x$", "$+")`, `["$"]`},
		{`string.find("abc", "%a*", 2)`, `[2,3]`},
		{`string.gsub("hello world", "o", "0", 1)`, `["hell0 world",1]`},
	}
	for _, c := range cases {
		st, _ := newTestState(t, apiModule(`return `+c.expr), nil)
		got, err := callRun(t, st)
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		var want any
		if err := json.Unmarshal([]byte(c.want), &want); err != nil {
			t.Fatalf("%s: bad expectation: %v", c.expr, err)
		}
		wantJSON, _ := EncodeJSON(want)
		if b, _ := EncodeJSON(got); string(b) != string(wantJSON) {
			t.Errorf("%s = %s, want %s", c.expr, b, wantJSON)
		}
	}
}

// TestBuiltinAttacksAreRefused: each expression once crashed the daemon,
// ran long past its deadline or leaked Go internals; each must now end the
// call with a Lua error, and the state must answer the next call.
func TestBuiltinAttacksAreRefused(t *testing.T) {
	for _, c := range []struct{ expr, want string }{
		{`string.rep("abcd", 2^62)`, "over the limit"},
		{`string.rep("abcd", 2^62, "x")`, "over the limit"},
		{`string.rep("", 2^40, "x")`, "over the limit"},
		{`string.format(string.rep("%1000000[1]s", 1000), "x")`, "invalid format (width or precision too long)"},
		{`string.format("%100d", 1)`, "invalid format (width or precision too long)"},
		{`string.format("%.100f", 1)`, "invalid format (width or precision too long)"},
		{`string.format("%p", {})`, "invalid option '%p'"},
		{`string.format("%T", {})`, "invalid option '%T'"},
		{`string.format("%------d", 1)`, "repeated flags"},
		{`string.format("%d")`, "no value"},
		{`string.format(string.rep("%99s", 200000), unpack({}))`, "no value"},
		{`string.format("%s%s", string.rep("x", 16 * 2^20), "y")`, "over the limit"},
		{`string.format("%q", string.rep("\n", 9 * 2^20))`, "over the limit"},
		{`string.gsub("(" .. string.rep("x", 2^20) .. ")", "%b()", string.rep("%0", 100))`, "over the limit"},
		{`string.gsub(string.rep("x", 2^20), "x", string.rep("y", 100))`, "over the limit"},
		{`table.concat({string.rep("x", 2^23), string.rep("x", 2^23), "x"})`, "over the limit"},
		{`table.concat({"a"}, "", 1, 2^31)`, "invalid value (at index 2)"},
		{`unpack({}, 1, 1e6)`, "over the limit of 8000"},
		{`unpack({}, -2^31, 2^31)`, "over the limit of 8000"},
		{`string.byte(string.rep("x", 2^20), 1, -1)`, "over the limit of 8000"},
		{`string.find("x", "(((((((((((((((((((((((((((((((((x)))))))))))))))))))))))))))))))))")`, "too many captures"},
		{`string.find(string.rep("x", 300), string.rep("x?", 300))`, "pattern too complex"},
		{`string.match("x", "%")`, "malformed pattern (ends with '%')"},
		{`string.match("x", "[x")`, "malformed pattern (missing ']')"},
		{`string.match("x", "%b")`, "unbalanced pattern"},
		{`string.match("x", "%f")`, "missing '[' after '%f' in pattern"},
		{`string.match("x", "(x")`, "unfinished capture"},
		{`string.match("x", "x)")`, "invalid pattern capture"},
		{`string.gsub("abc", "(%w)", "%2")`, "invalid capture index"},
		{`string.gsub("abc", "%w", {a = {}})`, "invalid replacement value (a table)"},
		{`string.gsub("abc", "%w", function() return true end)`, "invalid replacement value (a boolean)"},
		{`(function() local t = {} for i = 1, 5 do t[i] = string.rep("x", 15 * 2^20) end end)()`, "call memory budget exceeded"},
		{`(function() local s = string.rep("x", 2^20) for i = 1, 100 do s:upper() end end)()`, "call memory budget exceeded"},
		{`os.date(string.rep("%c", 2^23))`, "os.date: the format is 16777216 bytes, over the limit of 1024"},
	} {
		st, _ := newTestStateTimeout(t, apiModule(`if ... then return "alive" end return `+c.expr), nil, time.Hour)
		if _, err := callRun(t, st); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.expr, err, c.want)
		}
		if got, err := callRun(t, st, true); err != nil || len(got) != 1 || got[0] != "alive" {
			t.Errorf("%s: the next call got %v, %v", c.expr, got, err)
		}
	}
}

// TestPatternMatchingStopsAtTheDeadline: backtracking over a long subject
// takes far longer than the call's deadline; the matcher notices it ends.
func TestPatternMatchingStopsAtTheDeadline(t *testing.T) {
	for _, expr := range []string{
		`string.find(s, ".-.-.-b")`,
		`string.match(s, ".-.-.-b")`,
		`string.gsub(s, ".-.-.-b", "")`,
		`string.gmatch(s, ".-.-.-b")()`,
	} {
		st, _ := newTestStateTimeout(t, apiModule(`local s = ... return `+expr), nil, 20*time.Millisecond)
		if _, err := callRun(t, st, strings.Repeat("a", 300000)); err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
			t.Errorf("%s: err = %v, want the deadline", expr, err)
		}
	}
}

// TestGsubLargeSubject: a replacement for every byte of a megabyte, in one
// pass (gopher-lua's gsub copied the whole string per replacement).
func TestGsubLargeSubject(t *testing.T) {
	s, _ := newTestStateTimeout(t, apiModule(`local src = ... local out, n = string.gsub(src, ".", "b") return #out, n, out:sub(1, 3)`), nil, time.Hour)
	got, err := s.Call(context.Background(), "cb:spam_checker.run", strings.Repeat("a", 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != int64(1<<20) || got[1] != int64(1<<20) || got[2] != "bbb" {
		t.Fatalf("got %v", got)
	}
}

// TestValuesThatExpandAreRefused: a table holding the same table twice at
// each of 30 levels is 2^30 values once copied or encoded.
func TestValuesThatExpandAreRefused(t *testing.T) {
	const dag = `local t = {string.rep("x", 1000), 1, 2, 3} for i = 1, 30 do t = {t, t} end `
	for _, c := range []struct{ body, want string }{
		{dag + `return api.json.encode(t)`, "value too large"},
		{dag + `return t`, "value too large"},
		{`return api.json.decode("[" .. string.rep("0,", 2^20) .. "0]")`, "call memory budget exceeded"},
		{`return api.json.decode(string.rep("[0,", 2^20) .. "0" .. string.rep("]", 2^20))`, "JSON nested too deeply: 1048576 levels"},
	} {
		st, _ := newTestStateTimeout(t, apiModule(c.body), nil, time.Hour)
		if _, err := callRun(t, st); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.body, err, c.want)
		}
	}
}

// TestPcallNestingIsBounded: recursion through pcall (each level a thread)
// stops at maxPcallDepth with Lua 5.1's stack overflow, which the levels
// below see as an error.
func TestPcallNestingIsBounded(t *testing.T) {
	for _, body := range []string{
		`local depth, msg = 0, nil
		 local function f() depth = depth + 1 local ok, err = pcall(f) if not ok and not msg then msg = err end end
		 f() return depth, msg`,
		`local depth, msg = 0, nil
		 local function f() depth = depth + 1 local ok, err = xpcall(f, function(e) return e end) if not ok and not msg then msg = err end end
		 f() return depth, msg`,
	} {
		st, _ := newTestStateTimeout(t, apiModule(body), nil, time.Hour)
		got, err := callRun(t, st)
		if err != nil {
			t.Fatal(err)
		}
		if got[0] != int64(maxPcallDepth) || !strings.Contains(got[1].(string), "stack overflow") {
			t.Errorf("got %v, want %d levels and a stack overflow", got, maxPcallDepth)
		}
	}
}

// TestSortAndApiFunctionsAreBounded: table.sort stops at the deadline;
// api functions that build from an argument charge the call's budget.
func TestSortAndApiFunctionsAreBounded(t *testing.T) {
	st, _ := newTestStateTimeout(t, apiModule(`local t = ... table.sort(t, function(a, b) return a > b end) return t[1], t[#t]`), nil, time.Hour)
	got, err := callRun(t, st, []any{3, 1, 2})
	if err != nil || got[0] != int64(3) || got[1] != int64(1) {
		t.Fatalf("sort: %v, %v", got, err)
	}
	st, _ = newTestStateTimeout(t, apiModule(`local t = ... table.sort(t) return t[1], t[#t]`), nil, time.Hour)
	if got, err = callRun(t, st, []any{"b", "c", "a"}); err != nil || got[0] != "a" || got[1] != "c" {
		t.Fatalf("sort: %v, %v", got, err)
	}
	big := make([]any, 1<<20)
	for i := range big {
		big[i] = len(big) - i
	}
	slow, _ := newTestStateTimeout(t, apiModule(`local t = ... table.sort(t)`), nil, 20*time.Millisecond) // no Lua comparator: no instruction to stop at
	if _, err := callRun(t, slow, big); err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Errorf("a long sort: err = %v, want the deadline", err)
	}
	for _, c := range []struct{ body, want string }{
		{`local s = string.rep("x", 15 * 2^20) for i = 1, 3 do api.encoding.hex_encode(s) end`, "call memory budget exceeded"},
		{`return api.regex.compile("."):findall(string.rep("x", 2^19))`, "more than 262144 matches"},
		{`return api.regex.compile(string.rep("(", 999) .. "x" .. string.rep(")", 999))`, "expression nests too deeply"},
		{`return api.regex.compile(string.rep("x{1000}", 1000))`, "expands to over 65536 characters and repetitions"},
		{`return api.regex.compile(string.rep("x", 2^20))`, "expands to over 65536 characters and repetitions"},
	} {
		st, _ := newTestStateTimeout(t, apiModule(c.body), nil, time.Hour)
		if _, err := callRun(t, st); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.body, err, c.want)
		}
	}
}

// TestValuesInBlocksOutliveTheirCall: captures, positions and upper-cased
// strings are made in shared blocks (valueslab.go); values kept by the
// module across calls and collections keep their contents.
func TestValuesInBlocksOutliveTheirCall(t *testing.T) {
	s, _ := newTestState(t, `local M = {}
local kept = {}
function M.init(api)
  api.register_spam_checker_callbacks{ run = function(text)
    if text == "check" then return table.concat(kept, " ") end
    for w in string.gmatch(text, "%a+") do kept[#kept + 1] = string.upper(w) end
    kept[#kept + 1] = select(2, string.find(text, "%a+$"))
    kept[#kept + 1] = select(3, string.find(text, "()$"))
  end }
end
return M`, nil)
	var want []string
	for i := range 50 {
		text := strings.Repeat("x", 200) + " word" + strings.Repeat("y", i)
		if _, err := callRun(t, s, text); err != nil {
			t.Fatal(err)
		}
		want = append(want, strings.Repeat("X", 200), "WORD"+strings.Repeat("Y", i), fmt.Sprint(len(text)), fmt.Sprint(len(text)+1))
		runtime.GC()
	}
	got, err := callRun(t, s, "check")
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != strings.Join(want, " ") {
		t.Fatalf("kept values changed:\n%v\nwant\n%v", got[0], strings.Join(want, " "))
	}
}
