package luaapi

import (
	"context"
	"strings"
	"testing"
)

// TestGsubSemantics compares the replacement gsub with Lua 5.1's results.
func TestGsubSemantics(t *testing.T) {
	cases := []struct{ expr, want string }{
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
	}
	for _, c := range cases {
		st, _ := newTestState(t, apiModule(`return `+c.expr), nil)
		got, err := callRun(t, st)
		if err != nil {
			t.Fatalf("%s: %v", c.expr, err)
		}
		if b, _ := EncodeJSON(got); string(b) != c.want {
			t.Errorf("%s = %s, want %s", c.expr, b, c.want)
		}
	}
	for _, bad := range []struct{ expr, want string }{
		{`string.gsub("abc", "(%w)", "%2")`, "invalid capture index"},
		{`string.gsub("abc", "%w", {a = {}})`, "invalid replacement value (a table)"},
		{`string.gsub("abc", "[", "x")`, "unexpected EOS"},
	} {
		st, _ := newTestState(t, apiModule(`return `+bad.expr), nil)
		if _, err := callRun(t, st); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: err = %v, want %q", bad.expr, err, bad.want)
		}
	}
}

// TestGsubIsLinear: gopher-lua's gsub took 2.4 s for 50 KB; this one must
// stay far inside the module's deadline for 1 MB.
func TestGsubIsLinear(t *testing.T) {
	s, _ := newTestState(t, apiModule(`local src = ... local out, n = string.gsub(src, ".", "b") return #out, n`), nil)
	got, err := s.Call(context.Background(), "cb:spam_checker.run", strings.Repeat("a", 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != int64(1<<20) || got[1] != int64(1<<20) {
		t.Fatalf("got %v", got)
	}
	big, _ := newTestState(t, apiModule(`local src = ... return string.gsub(src, ".", string.rep("x", 1000))`), nil)
	if _, err := big.Call(context.Background(), "cb:spam_checker.run", strings.Repeat("a", 100000)); err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Fatalf("a 100 MB result was not refused: %v", err)
	}
}
