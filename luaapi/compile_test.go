package luaapi

import (
	"context"
	"fmt"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// longFunction is a chunk whose main function has more than 1024
// instructions (the compiler's initial capacity).
func longFunction() string {
	var b strings.Builder
	b.WriteString("local n = 0\n")
	for i := 0; i < 700; i++ {
		fmt.Fprintf(&b, "n = n + %d\n", i)
	}
	b.WriteString("return n\n")
	return b.String()
}

func TestCompileTrimsProtos(t *testing.T) {
	tests := []struct {
		name, src string
		want      any
	}{
		{"expression", "return 1 + 2", int64(3)},
		{"nested functions", `local function outer(a)
  local function inner(b) return function(c) return a + b + c end end
  return inner(2)(3)
end
return outer(1)`, int64(6)},
		{"long function", longFunction(), int64(244650)},
		{"error position after trimming", "local t = nil\nreturn (pcall(function() return t.x end)) and 'no error' or select(2, pcall(function() return t.x end))", "trim.lua:2: attempt to index a non-table object(nil) with key 'x'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proto, err := Compile(tt.src, "trim.lua")
			if err != nil {
				t.Fatal(err)
			}
			var check func(p *lua.FunctionProto)
			check = func(p *lua.FunctionProto) {
				if cap(p.Code) != len(p.Code) || cap(p.DbgSourcePositions) != len(p.DbgSourcePositions) {
					t.Errorf("%s:%d: code %d/%d, lines %d/%d (len/cap)", p.SourceName, p.LineDefined,
						len(p.Code), cap(p.Code), len(p.DbgSourcePositions), cap(p.DbgSourcePositions))
				}
				for _, f := range p.FunctionPrototypes {
					check(f)
				}
			}
			check(proto)
			s, err := NewState(Options{Module: "trim", Sandbox: true, Env: &Env{}})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			got, err := s.Run(context.Background(), proto)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0] != tt.want {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}
