package luaapi

import (
	"errors"
	"fmt"
	"testing"
)

func TestWithoutModule(t *testing.T) {
	se := &ScriptError{Module: "spam.lua", Source: "spam.lua", Line: 3, Message: "boom"}
	cases := []struct {
		err  error
		want string
	}{
		{se, "spam.lua:3: boom"},
		{fmt.Errorf("M.restore: %w", se), "M.restore: spam.lua:3: boom"},
		{&ScriptError{Source: "x.lua", Line: 1, Message: "no module"}, "x.lua:1: no module"},
		{errors.New("plain"), "plain"},
	}
	for _, c := range cases {
		if got := WithoutModule(c.err); got != c.want {
			t.Errorf("WithoutModule(%q) = %q, want %q", c.err, got, c.want)
		}
	}
}
