package engine

import (
	"context"
	"reflect"
	"testing"

	"luamods/luaapi"
)

func TestParseSpamVerdict(t *testing.T) {
	cases := []struct {
		name string
		res  any
		want SpamVerdict
	}{
		{"allow", "NOT_SPAM", SpamVerdict{Allowed: true}},
		{"code", luaapi.Tuple{"M_LIMIT_EXCEEDED", map[string]any{}}, SpamVerdict{Errcode: "M_LIMIT_EXCEEDED", Extra: map[string]any{}}},
		{"extra", luaapi.Tuple{"M_FORBIDDEN", map[string]any{"a": "b"}}, SpamVerdict{Errcode: "M_FORBIDDEN", Extra: map[string]any{"a": "b"}}},
		{"message", "no spam please", SpamVerdict{Errcode: "M_FORBIDDEN", Message: "no spam please"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := ParseSpamVerdict(c.res); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
	body := SpamVerdict{Errcode: "M_FORBIDDEN", Extra: map[string]any{"reason": "x"}}.Body("rejected")
	if !reflect.DeepEqual(body, map[string]any{"errcode": "M_FORBIDDEN", "error": "rejected", "reason": "x"}) {
		t.Fatalf("Body = %v", body)
	}
}

func TestTypedHelpers(t *testing.T) {
	eng, _, err := startEngine(t, map[string]string{
		"luamods.yaml": modulesConfig(1),
		"m1.lua": moduleSource(
			reg{"spam_checker", "user_may_invite", "local a, b, room = ... if room == '!no:x' then return api.errors.FORBIDDEN, {why = 'closed'} end return api.NOT_SPAM"},
			reg{"third_party_rules", "check_event_allowed", "local ev = ... if ev.type == 'bad' then return false end if ev.type == 'rewrite' then ev.content = {x = 1} return true, ev end return true"},
			reg{"account_validity", "is_user_expired", "local u = ... if u == '@old:x' then return true end return nil"},
		),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if v, err := eng.UserMayInvite(ctx, "@a:x", "@b:x", "!no:x"); err != nil || v.Allowed || v.Extra["why"] != "closed" {
		t.Errorf("UserMayInvite deny: %+v %v", v, err)
	}
	if v, err := eng.UserMayInvite(ctx, "@a:x", "@b:x", "!ok:x"); err != nil || !v.Allowed {
		t.Errorf("UserMayInvite allow: %+v %v", v, err)
	}
	if ok, repl, err := eng.CheckEventAllowed(ctx, map[string]any{"type": "bad"}, nil); err != nil || ok || repl != nil {
		t.Errorf("deny: %v %v %v", ok, repl, err)
	}
	if ok, repl, err := eng.CheckEventAllowed(ctx, map[string]any{"type": "rewrite"}, nil); err != nil || !ok || repl["content"].(map[string]any)["x"] != int64(1) {
		t.Errorf("replace: %v %v %v", ok, repl, err)
	}
	if exp, known, err := eng.IsUserExpired(ctx, "@old:x"); err != nil || !exp || !known {
		t.Errorf("expired: %v %v %v", exp, known, err)
	}
	if _, known, err := eng.IsUserExpired(ctx, "@new:x"); err != nil || known {
		t.Errorf("no opinion: %v %v", known, err)
	}
}
