package luaapi

import (
	"context"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

func TestLazyAPIFields(t *testing.T) {
	s, _ := newTestState(t, apiModule(`
    local kind = ...
    if kind == "first read" then
      local before = rawget(api, "log")
      local log = api.log
      return before == nil, type(log), rawget(api, "log") == log, api.log == log
    elseif kind == "every lazy name" then
      local missing = {}
      for name in string.gmatch(select(2, ...), "%S+") do
        if api[name] == nil then missing[#missing + 1] = name end
      end
      return table.concat(missing, " ")
    elseif kind == "pairs" then
      local n, seen = 0, {}
      for k in pairs(api) do n = n + 1; seen[k] = true end
      local _ = api.json
      local m = 0
      for k in pairs(api) do m = m + 1 end
      return seen.server_name == true, seen.register_web_resource == true, seen.json == nil, m == n + 1
    elseif kind == "unknown" then
      return api.no_such_field == nil, api[1] == nil, api.worker_name == nil
    elseif kind == "metatable" then
      return getmetatable(api), pcall(setmetatable, api, {})
    end`), nil)
	call := func(args ...any) string {
		t.Helper()
		got, err := s.Call(context.Background(), "cb:spam_checker.run", args...)
		if err != nil {
			t.Fatalf("%v: %v", args[0], err)
		}
		b, _ := EncodeJSON(got)
		return string(b)
	}
	var names []string
	for name := range apiTables {
		names = append(names, name)
	}
	names = append(names, HostMethods...)
	for _, mgr := range HostManagers {
		names = append(names, mgr.Name)
	}
	for _, c := range []struct { // in order: "pairs" before "every lazy name" reads them all
		args []any
		want string
	}{
		{[]any{"first read"}, `[true,"table",true,true]`},
		{[]any{"pairs"}, `[true,true,true,true]`},
		{[]any{"every lazy name", strings.Join(names, " ")}, `[""]`},
		{[]any{"unknown"}, `[true,true,true]`},
		{[]any{"metatable"}, `[false,false,"cannot change a protected metatable"]`},
	} {
		if got := call(c.args...); got != c.want {
			t.Errorf("%v: got %s, want %s", c.args[0], got, c.want)
		}
	}
	var listed []string
	s.Do(context.Background(), func(*lua.LState) { listed = s.APINames() })
	for _, want := range append(names, "server_name", "register_spam_checker_callbacks", "cached") {
		if !strings.Contains(" "+strings.Join(listed, " ")+" ", " "+want+" ") {
			t.Errorf("APINames lacks %s", want)
		}
	}
}
