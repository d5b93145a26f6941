package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestInvokeAllRunsEveryModule(t *testing.T) {
	eng, logs, err := startEngine(t, map[string]string{
		"luamods.yaml": "modules:\n  - module: a.lua\n  - module: b.lua\n  - module: c.lua\n",
		"a.lua":        moduleSource(reg{"spam_checker", "user_may_join_room", `seen = (seen or 0) + 1 return "M_FORBIDDEN"`}),
		"b.lua":        moduleSource(reg{"spam_checker", "user_may_join_room", `error("b fails")`}),
		"c.lua":        moduleSource(reg{"spam_checker", "user_may_join_room", `seen = (seen or 0) + 1 return api.NOT_SPAM`}),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Invoke stops at a.lua's denial; InvokeAll runs all three.
	if res, err := eng.Invoke(ctx, "spam_checker.user_may_join_room", "@u:x", "!r:x", false); err != nil || res == nil {
		t.Fatal(res, err)
	}
	n, err := eng.InvokeAll(ctx, "spam_checker.user_may_join_room", "@u:x", "!r:x", false)
	if err != nil || n != 3 {
		t.Fatalf("InvokeAll = %d, %v", n, err)
	}
	if !strings.Contains(logs.String(), "b fails") {
		t.Errorf("b.lua's error is not logged:\n%s", logs)
	}
	cb := "spam_checker.user_may_join_room"
	if a, b, c := calls(eng, cb, "a.lua"), calls(eng, cb, "b.lua"), calls(eng, cb, "c.lua"); a != 2 || b != 1 || c != 1 {
		t.Errorf("calls per module: a %d, b %d, c %d (Invoke runs a.lua only, InvokeAll all three)", a, b, c)
	}
	if _, err := eng.InvokeAll(ctx, "spam_checker.nope"); !errors.Is(err, ErrUnknownCallback) {
		t.Errorf("unknown callback: %v", err)
	}
	if _, err := eng.InvokeAll(ctx, "password_auth_provider.auth_checkers", "u", "m.login.password", map[string]any{}); err == nil {
		t.Error("a keyed callback ran in every module")
	}
}

func TestInvokeOnlySkipsThen(t *testing.T) {
	eng, _, err := startEngine(t, map[string]string{
		"luamods.yaml": "modules:\n  - module: a.lua\n",
		"a.lua": moduleSource(reg{"spam_checker", "federated_user_may_invite", `return api.NOT_SPAM`},
			reg{"spam_checker", "user_may_invite", `return "M_FORBIDDEN"`}),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	invite := map[string]any{"sender": "@a:remote", "state_key": "@b:x", "room_id": "!r:remote"}
	if res, err := eng.Invoke(ctx, "spam_checker.federated_user_may_invite", invite); err != nil || res == "NOT_SPAM" {
		t.Fatalf("Invoke runs user_may_invite after: %v %v", res, err)
	}
	if res, err := eng.InvokeOnly(ctx, "spam_checker.federated_user_may_invite", invite); err != nil || res != "NOT_SPAM" {
		t.Fatalf("InvokeOnly: %v %v", res, err)
	}
	if n := calls(eng, "spam_checker.user_may_invite", "a.lua"); n != 1 {
		t.Errorf("user_may_invite ran %d times, want 1 (Invoke only)", n)
	}
}
