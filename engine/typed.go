package engine

import (
	"context"

	"luamods/luaapi"
)

// SpamVerdict is a spam checker's combined answer in Go terms.
type SpamVerdict struct {
	Allowed bool
	Errcode string         // when denied: the Matrix errcode (M_FORBIDDEN by default)
	Extra   map[string]any // when denied: extra fields for the error body
	Message string         // when denied with a message (check_event_for_spam's deprecated strings)
}

// ParseSpamVerdict reads the result of a spam-checker callback: "NOT_SPAM",
// (errcode, {extra}), or a message.
func ParseSpamVerdict(res any) SpamVerdict {
	switch v := res.(type) {
	case string:
		if v == luaapi.NotSpam {
			return SpamVerdict{Allowed: true}
		}
		return SpamVerdict{Errcode: forbidden, Message: v}
	case luaapi.Tuple:
		code, _ := first(v).(string)
		if code == "" {
			code = forbidden
		}
		verdict := SpamVerdict{Errcode: code}
		if len(v) > 1 {
			verdict.Extra, _ = v[1].(map[string]any)
		}
		return verdict
	}
	return SpamVerdict{Errcode: forbidden}
}

// Body is the Matrix error body a host answers a denial with: errcode,
// error (message), and the extra fields.
func (v SpamVerdict) Body(message string) map[string]any {
	if v.Message != "" {
		message = v.Message
	}
	body := make(map[string]any, len(v.Extra)+2)
	for k, x := range v.Extra {
		body[k] = x
	}
	body["errcode"] = v.Errcode
	body["error"] = message
	return body
}

// CheckEventForSpam runs spam_checker.check_event_for_spam.
func (e *Engine) CheckEventForSpam(ctx context.Context, event map[string]any) (SpamVerdict, error) {
	return e.spam(ctx, "spam_checker.check_event_for_spam", event)
}

// UserMayInvite runs spam_checker.user_may_invite.
func (e *Engine) UserMayInvite(ctx context.Context, inviter, invitee, roomID string) (SpamVerdict, error) {
	return e.spam(ctx, "spam_checker.user_may_invite", inviter, invitee, roomID)
}

// UserMayJoinRoom runs spam_checker.user_may_join_room.
func (e *Engine) UserMayJoinRoom(ctx context.Context, userID, roomID string, isInvited bool) (SpamVerdict, error) {
	return e.spam(ctx, "spam_checker.user_may_join_room", userID, roomID, isInvited)
}

// UserMayCreateRoom runs spam_checker.user_may_create_room.
func (e *Engine) UserMayCreateRoom(ctx context.Context, userID string, roomConfig map[string]any) (SpamVerdict, error) {
	return e.spam(ctx, "spam_checker.user_may_create_room", userID, roomConfig)
}

func (e *Engine) spam(ctx context.Context, name string, args ...any) (SpamVerdict, error) {
	res, err := e.Invoke(ctx, name, args...)
	if err != nil {
		return SpamVerdict{}, err
	}
	return ParseSpamVerdict(res), nil
}

// CheckEventAllowed runs third_party_rules.check_event_allowed: whether the
// event is allowed, and the event to use instead when a module replaced it.
func (e *Engine) CheckEventAllowed(ctx context.Context, event, stateEvents map[string]any) (allowed bool, replacement map[string]any, err error) {
	res, err := e.Invoke(ctx, "third_party_rules.check_event_allowed", event, stateEvents)
	if err != nil {
		return false, nil, err
	}
	t, _ := res.(luaapi.Tuple)
	if len(t) < 1 || t[0] == false {
		return false, nil, nil
	}
	if len(t) > 1 {
		replacement, _ = t[1].(map[string]any)
	}
	return true, replacement, nil
}

// IsUserExpired runs account_validity.is_user_expired: known is false when
// no module had an opinion (the host applies its own rule).
func (e *Engine) IsUserExpired(ctx context.Context, userID string) (expired, known bool, err error) {
	res, err := e.Invoke(ctx, "account_validity.is_user_expired", userID)
	if err != nil || res == nil {
		return false, false, err
	}
	b, ok := res.(bool)
	return b, ok, nil
}
