package engine

import (
	"errors"
	"fmt"
	"testing"

	"luamods/luaapi"
)

func TestHTTPAnswer(t *testing.T) {
	table := &luaapi.ScriptError{Module: "m", Value: map[string]any{"status": int64(429), "errcode": "M_LIMIT_EXCEEDED", "error": "slow", "retry_after_ms": int64(5)}}
	cases := []struct {
		name   string
		err    error
		status int
		body   string
	}{
		{"HTTPError, wrapped", fmt.Errorf("route: %w", NewHTTPError(413, "M_TOO_LARGE", "Request body too large")), 413, `{"errcode":"M_TOO_LARGE","error":"Request body too large"}`},
		{"error table", table, 429, `{"errcode":"M_LIMIT_EXCEEDED","error":"slow","retry_after_ms":5}`},
		{"error table in a callback", &CallbackError{Callback: "c.n", Module: "m", Err: table, Status: 429}, 429, `{"errcode":"M_LIMIT_EXCEEDED","error":"slow","retry_after_ms":5}`},
		{"error table without status", &luaapi.ScriptError{Value: map[string]any{"errcode": "M_FORBIDDEN"}}, 400, `{"errcode":"M_FORBIDDEN","error":"M_FORBIDDEN"}`},
		{"refused room creation", &CallbackError{Err: errors.New("no"), Status: 403}, 403, `{"errcode":"M_UNKNOWN","error":"Room creation forbidden with these parameters"}`},
		{"missing login fields", &CallbackError{Err: &MissingParamsError{LoginType: "t", Fields: []string{"a"}}, Status: 400}, 400, `{"errcode":"M_MISSING_PARAM","error":"Missing parameters for login type t: [a]"}`},
		{"a plain script error", &luaapi.ScriptError{Module: "m", Source: "m.lua", Line: 3, Message: "secret detail"}, 500, `{"errcode":"M_UNKNOWN","error":"Internal server error"}`},
		{"anything else", errors.New("secret detail"), 500, `{"errcode":"M_UNKNOWN","error":"Internal server error"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := HTTPAnswer(c.err)
			got, _ := luaapi.EncodeJSON(body)
			if status != c.status || string(got) != c.body {
				t.Fatalf("HTTPAnswer = %d %s, want %d %s", status, got, c.status, c.body)
			}
		})
	}
}
