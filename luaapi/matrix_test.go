package luaapi

import (
	"context"
	"errors"
	"testing"
)

// hostFunc is a Host made of one function.
type hostFunc func(ctx context.Context, method string, args []any) (any, error)

func (f hostFunc) CallHost(ctx context.Context, method string, args []any) (any, error) {
	return f(ctx, method, args)
}

func TestJSONNull(t *testing.T) {
	src := apiModule(`
    local kind = ...
    local null = api.json.null
    if kind == "encode" then return api.json.encode({{"m.room.member", null}, {"m.room.create", ""}})
    elseif kind == "leave" then return {{"m.room.member", null}}
    elseif kind == "same" then return null == api.json.null, tostring(null), type(null)
    end`)
	s, _ := newTestState(t, src, nil)
	ctx := context.Background()
	got, err := s.Call(ctx, "cb:spam_checker.run", "encode")
	if err != nil || got[0] != `[["m.room.member",null],["m.room.create",""]]` {
		t.Fatalf("encode: %v %v", got, err)
	}
	got, err = s.Call(ctx, "cb:spam_checker.run", "leave")
	if b, _ := EncodeJSON(got[0]); err != nil || string(b) != `[["m.room.member",null]]` {
		t.Fatalf("FromLua: %s %v", b, err)
	}
	got, err = s.Call(ctx, "cb:spam_checker.run", "same")
	if err != nil || got[0] != true || got[1] != "null" || got[2] != "userdata" {
		t.Fatalf("identity: %v %v", got, err)
	}
}

func TestJSONIsArray(t *testing.T) {
	cases := []struct {
		expr string
		want bool
	}{
		{`{1, 2, 3}`, true},
		{`{"a", api.json.null}`, true},
		{`api.json.array({})`, true},
		{`api.json.decode("[]")`, true},
		{`api.json.decode("{}")`, false},
		{`{}`, false},
		{`{a = 1}`, false},
		{`{1, 2, x = 3}`, false},
		{`{[1] = 1, [3] = 3}`, false},
		{`"[1]"`, false},
		{`nil`, false},
	}
	for _, c := range cases {
		t.Run(c.expr, func(t *testing.T) {
			s, _ := newTestState(t, apiModule(`return api.json.is_array(`+c.expr+`)`), nil)
			got, err := s.Call(context.Background(), "cb:spam_checker.run")
			if err != nil || got[0] != c.want {
				t.Fatalf("is_array(%s) = %v %v, want %v", c.expr, got, err, c.want)
			}
		})
	}
}

func TestWorkerNameAndEmailAppName(t *testing.T) {
	src := apiModule(`return api.worker_name, api.email_app_name`)
	s, _ := newTestState(t, src, nil)
	got, err := s.Call(context.Background(), "cb:spam_checker.run")
	if err != nil || got[0] != nil || got[1] != "example.com" {
		t.Fatalf("defaults: %v %v", got, err)
	}
	s, _ = newTestState(t, src, &Env{WorkerName: "worker1", EmailAppName: "Example Chat"})
	got, err = s.Call(context.Background(), "cb:spam_checker.run")
	if err != nil || got[0] != "worker1" || got[1] != "Example Chat" {
		t.Fatalf("set: %v %v", got, err)
	}
}

func TestGetUserByReq(t *testing.T) {
	src := apiModule(`
    local ok, res = pcall(api.get_user_by_req, ...)
    if ok then return res end
    return res.status, res.errcode, res.error`)
	host := hostFunc(func(_ context.Context, method string, args []any) (any, error) {
		if method != "get_user_by_req" {
			return nil, errors.New("unexpected " + method)
		}
		if args[0] == "good" {
			return "@alice:example.com", nil
		}
		return nil, &MatrixError{Status: 401, Errcode: "M_UNKNOWN_TOKEN", Message: "Unrecognised access token"}
	})
	s, _ := newTestState(t, src, &Env{Host: host})
	cases := []struct {
		name string
		req  map[string]any
		want []any
	}{
		{"bearer", map[string]any{"headers": map[string]any{"authorization": "Bearer good"}}, []any{"@alice:example.com"}},
		{"query", map[string]any{"headers": map[string]any{}, "query": map[string]any{"access_token": "good"}}, []any{"@alice:example.com"}},
		{"unknown", map[string]any{"headers": map[string]any{"authorization": "Bearer bad"}}, []any{int64(401), "M_UNKNOWN_TOKEN", "Unrecognised access token"}},
		{"missing", map[string]any{"headers": map[string]any{"authorization": "Basic x"}}, []any{int64(401), "M_MISSING_TOKEN", "Missing access token"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.Call(context.Background(), "cb:spam_checker.run", c.req)
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range c.want {
				if i >= len(got) || got[i] != w {
					t.Fatalf("got %v, want %v", got, c.want)
				}
			}
		})
	}
}
