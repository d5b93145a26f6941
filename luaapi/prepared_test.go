package luaapi

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// TestPreparedArgsConvertAsToLua: a prepared argument becomes the same Lua
// value as the Go value itself, or fails with the same error, and each
// conversion builds tables of its own.
func TestPreparedArgsConvertAsToLua(t *testing.T) {
	deep := any("bottom")
	for range MaxDepth + 1 {
		deep = []any{deep}
	}
	cases := map[string]any{
		"event":           event20(),
		"empty array":     map[string]any{"a": []any{}, "s": []string{}},
		"strings":         []string{"a", "b"},
		"string map":      map[string]string{"k": "v"},
		"nil in array":    []any{1, nil, 3},
		"big integer":     map[string]any{"n": int64(1) << 60, "j": json.Number("12.5"), "u": uint64(7)},
		"scalar":          "plain",
		"bytes":           []byte("raw"),
		"too deep":        deep,
		"not convertible": map[string]any{"x": struct{}{}},
	}
	L := lua.NewState(stateOptions)
	defer L.Close()
	for name, v := range cases {
		t.Run(name, func(t *testing.T) {
			p := PrepareArgs([]any{v, "mutable"}, 2)
			if p[1] != "mutable" {
				t.Fatalf("the skipped argument became %#v", p[1])
			}
			want, wantErr := ToLua(L, v)
			got, gotErr := ToLua(L, p[0])
			if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
				t.Fatalf("error %v, want %v", gotErr, wantErr)
			}
			if wantErr != nil {
				return
			}
			wantGo, err1 := FromLua(want)
			gotGo, err2 := FromLua(got)
			if err1 != nil || err2 != nil || !reflect.DeepEqual(gotGo, wantGo) {
				t.Fatalf("prepared gives %#v (%v), ToLua %#v (%v)", gotGo, err2, wantGo, err1)
			}
			if tbl, ok := got.(*lua.LTable); ok {
				again, _ := ToLua(L, p[0])
				if again == got {
					t.Fatal("two conversions share a table")
				}
				tbl.RawSetString("changed", lua.LTrue)
				if again.(*lua.LTable).RawGetString("changed") != lua.LNil {
					t.Fatal("a change to one conversion shows in the other")
				}
			}
		})
	}
}
