package luaapi

import (
	"context"
	"sort"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// luaKeywords complete at the start of a name.
var luaKeywords = []string{"and", "break", "do", "else", "elseif", "end", "false", "for", "function", "if", "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while"}

// Completions lists, sorted, the names word may complete to in the state:
// the keys of the table its dotted prefix names ("api." → api's fields,
// "string." → the string library), or the globals, keywords, api and M.
// For the REPL.
func (s *State) Completions(ctx context.Context, word string) []string {
	prefix := ""
	if i := strings.LastIndex(word, "."); i >= 0 {
		prefix = word[:i+1]
	}
	var names []string
	s.Do(ctx, func(L *lua.LState) {
		var t *lua.LTable
		switch prefix {
		case "":
			t = L.G.Global
			names = append(names, luaKeywords...)
			names = append(names, "api", "M")
		case "api.":
			for _, name := range s.APINames() { // api builds most fields on first read
				names = append(names, prefix+name)
			}
			return
		default:
			v := L.GetGlobal(strings.Split(prefix, ".")[0])
			for _, part := range strings.Split(strings.TrimSuffix(prefix, "."), ".")[1:] {
				v = L.GetField(v, part)
			}
			t, _ = v.(*lua.LTable)
		}
		if t == nil {
			return
		}
		t.ForEach(func(k, _ lua.LValue) {
			if ks, ok := k.(lua.LString); ok {
				names = append(names, prefix+string(ks))
			}
		})
	})
	sort.Strings(names)
	return names
}
