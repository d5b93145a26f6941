package matrixhost

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"luamods/luaapi"
)

// tuple is a result of several values.
func tuple(v ...any) luaapi.Tuple { return luaapi.Tuple(v) }

// checkUserExists is check_user_exists(user_id) → user_id or nil: Synapse's
// GET /_synapse/admin/v2/users/{user_id} with an admin token, else GET
// /register/available (a taken name exists), else the user's profile.
func (h *Host) checkUserExists(ctx context.Context, a []any) (any, error) {
	r := read(a)
	user := h.user(r, 0, "user_id")
	if r.err != nil {
		return nil, r.err
	}
	if !h.isMine(user) {
		return nil, nil
	}
	if h.opts.AdminToken != "" {
		res, err := h.do(ctx, call{method: "GET", path: admin("v2", "users", user), token: h.opts.AdminToken})
		if err == nil {
			if name, ok := res.(map[string]any)["name"].(string); ok && name != "" {
				return name, nil
			}
			return user, nil
		}
		if isStatus(err, 404, "M_NOT_FOUND") {
			return nil, nil
		}
		if !unrecognized(err) {
			return nil, err
		}
	}
	localpart := strings.TrimPrefix(strings.SplitN(user, ":", 2)[0], "@")
	_, err := h.do(ctx, call{method: "GET", path: cs("register", "available"), query: url.Values{"username": {localpart}}})
	switch {
	case err == nil:
		return nil, nil
	case isStatus(err, 400, "M_USER_IN_USE"):
		return user, nil
	}
	_, err = h.do(ctx, call{method: "GET", path: cs("profile", user), query: as(h.sender()), token: h.opts.ASToken})
	if isStatus(err, 404, "") {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return user, nil
}

// checkUsername is check_username(localpart): nil when the name is free,
// else the homeserver's refusal (M_USER_IN_USE, M_INVALID_USERNAME, …).
func (h *Host) checkUsername(ctx context.Context, a []any) (any, error) {
	r := read(a)
	name := r.str(0, "username")
	if r.err != nil {
		return nil, r.err
	}
	_, err := h.do(ctx, call{method: "GET", path: cs("register", "available"), query: url.Values{"username": {name}}})
	return nil, err
}

// adminUser reads GET /_synapse/admin/v2/users/{user_id}.
func (h *Host) adminUser(ctx context.Context, user string) (map[string]any, error) {
	path := admin("v2", "users", user)
	token, err := h.adminToken("GET " + path)
	if err != nil {
		return nil, err
	}
	res, err := h.do(ctx, call{method: "GET", path: path, token: token})
	if err != nil {
		return nil, err
	}
	m, _ := res.(map[string]any)
	return m, nil
}

// getUserinfoByID is get_userinfo_by_id(user_id) → UserInfo's fields, or nil.
func (h *Host) getUserinfoByID(ctx context.Context, a []any) (any, error) {
	r := read(a)
	user := h.user(r, 0, "user_id")
	if r.err != nil {
		return nil, r.err
	}
	u, err := h.adminUser(ctx, user)
	if isStatus(err, 404, "M_NOT_FOUND") {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"user_id":                    user,
		"is_admin":                   truthy(u["admin"]),
		"is_guest":                   truthy(u["is_guest"]),
		"consent_server_notice_sent": u["consent_server_notice_sent"],
		"consent_version":            u["consent_version"],
		"consent_ts":                 u["consent_ts"],
		"creation_ts":                u["creation_ts"],
		"appservice_id":              u["appservice_id"],
		"user_type":                  u["user_type"],
		"is_deactivated":             truthy(u["deactivated"]),
		"locked":                     truthy(u["locked"]),
		"is_shadow_banned":           truthy(u["shadow_banned"]),
		"approved":                   u["approved"] == nil || truthy(u["approved"]),
	}, nil
}

// truthy is Python's bool() of a JSON scalar as Synapse stores flags (true, 1).
func truthy(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case nil:
		return false
	}
	return number(v, 0) != 0
}

// isUserAdmin is is_user_admin(user_id) → boolean.
func (h *Host) isUserAdmin(ctx context.Context, a []any) (any, error) {
	r := read(a)
	user := h.user(r, 0, "user_id")
	if r.err != nil {
		return nil, r.err
	}
	path := admin("v1", "users", user, "admin")
	token, err := h.adminToken("GET " + path)
	if err != nil {
		return nil, err
	}
	res, err := h.do(ctx, call{method: "GET", path: path, token: token})
	if err != nil {
		return nil, err
	}
	return truthy(res.(map[string]any)["admin"]), nil
}

// setUserAdmin is set_user_admin(user_id, admin).
func (h *Host) setUserAdmin(ctx context.Context, a []any) (any, error) {
	r := read(a)
	user := h.user(r, 0, "user_id")
	if r.err != nil {
		return nil, r.err
	}
	path := admin("v1", "users", user, "admin")
	token, err := h.adminToken("PUT " + path)
	if err != nil {
		return nil, err
	}
	_, err = h.do(ctx, call{method: "PUT", path: path, body: map[string]any{"admin": r.boolean(1, false)}, token: token})
	return nil, err
}

// getProfileForUser is get_profile_for_user(localpart) → {display_name,
// avatar_url}.
func (h *Host) getProfileForUser(ctx context.Context, a []any) (any, error) {
	r := read(a)
	user := h.user(r, 0, "localpart")
	if r.err != nil {
		return nil, r.err
	}
	res, err := h.do(ctx, call{method: "GET", path: cs("profile", user), query: as(h.sender()), token: h.opts.ASToken})
	if err != nil {
		return nil, err
	}
	m, _ := res.(map[string]any)
	return map[string]any{"display_name": m["displayname"], "avatar_url": m["avatar_url"]}, nil
}

// setDisplayname is set_displayname(user_id, new_displayname): PUT
// /profile/{user_id}/displayname as the user.
func (h *Host) setDisplayname(ctx context.Context, a []any) (any, error) {
	r := read(a)
	user := h.user(r, 0, "user_id")
	r.check(h.localUser(user, "user_id"))
	name := r.optStr(1, "new_displayname")
	if r.err != nil {
		return nil, r.err
	}
	_, err := h.do(ctx, call{method: "PUT", path: cs("profile", user, "displayname"), query: as(user), body: map[string]any{"displayname": name}, token: h.opts.ASToken})
	return nil, err
}

// getThreepidsForUser is get_threepids_for_user(user_id) → a list of
// {medium, address, validated_at, added_at}: GET /account/3pid as the user.
func (h *Host) getThreepidsForUser(ctx context.Context, a []any) (any, error) {
	r := read(a)
	user := h.user(r, 0, "user_id")
	r.check(h.localUser(user, "user_id"))
	if r.err != nil {
		return nil, r.err
	}
	res, err := h.do(ctx, call{method: "GET", path: cs("account", "3pid"), query: as(user), token: h.opts.ASToken})
	if err != nil {
		return nil, err
	}
	list, _ := res.(map[string]any)["threepids"].([]any)
	if list == nil {
		list = []any{}
	}
	return list, nil
}

// getUserIPAndAgents is get_user_ip_and_agents(user_id, since_ts) → a list
// of {ip, user_agent, last_seen}: GET /admin/whois/{user_id} as the user
// (each user may ask about themselves); [] for a remote user.
func (h *Host) getUserIPAndAgents(ctx context.Context, a []any) (any, error) {
	r := read(a)
	user := h.user(r, 0, "user_id")
	since := r.num(1, "since_ts", 0)
	if r.err != nil {
		return nil, r.err
	}
	if !h.isMine(user) {
		return []any{}, nil
	}
	res, err := h.do(ctx, call{method: "GET", path: cs("admin", "whois", user), query: as(user), token: h.opts.ASToken})
	if err != nil {
		return nil, err
	}
	out := []any{}
	devices, _ := res.(map[string]any)["devices"].(map[string]any)
	for _, d := range devices {
		sessions, _ := d.(map[string]any)["sessions"].([]any)
		for _, s := range sessions {
			conns, _ := s.(map[string]any)["connections"].([]any)
			for _, c := range conns {
				conn, _ := c.(map[string]any)
				if number(conn["last_seen"], 0) >= since {
					out = append(out, map[string]any{"ip": conn["ip"], "user_agent": conn["user_agent"], "last_seen": conn["last_seen"]})
				}
			}
		}
	}
	return out, nil
}

// registerUser is register_user(localpart, displayname, emails, admin) →
// user_id: Synapse's PUT /_synapse/admin/v2/users/{user_id} with an admin
// token; else the appservice registration (POST /register, type
// m.login.application_service) and the display name as the new user.
func (h *Host) registerUser(ctx context.Context, a []any) (any, error) {
	r := read(a)
	localpart := r.str(0, "localpart")
	display := r.optStr(1, "displayname")
	emails := r.list(2, "emails")
	makeAdmin := r.boolean(3, false)
	if r.err != nil {
		return nil, r.err
	}
	user := h.qualify(localpart)
	if h.opts.AdminToken != "" {
		body := map[string]any{"admin": makeAdmin}
		if display != "" {
			body["displayname"] = display
		}
		var threepids []any
		for _, e := range emails {
			threepids = append(threepids, map[string]any{"medium": "email", "address": e})
		}
		if threepids != nil {
			body["threepids"] = threepids
		}
		_, err := h.do(ctx, call{method: "PUT", path: admin("v2", "users", user), body: body, token: h.opts.AdminToken})
		if err == nil || !unrecognized(err) {
			return user, err
		}
	}
	if makeAdmin || len(emails) > 0 {
		_, err := h.adminToken("PUT " + admin("v2", "users", user))
		return nil, fmt.Errorf("admin and emails: %w", err)
	}
	res, err := h.do(ctx, call{method: "POST", path: cs("register"), body: map[string]any{
		"type": "m.login.application_service", "username": strings.TrimPrefix(strings.SplitN(localpart, ":", 2)[0], "@"), "inhibit_login": true,
	}, token: h.opts.ASToken})
	if err != nil {
		return nil, err
	}
	if id, ok := res.(map[string]any)["user_id"].(string); ok {
		user = id
	}
	if display != "" {
		if _, err := h.do(ctx, call{method: "PUT", path: cs("profile", user, "displayname"), query: as(user), body: map[string]any{"displayname": display}, token: h.opts.ASToken}); err != nil {
			return nil, fmt.Errorf("registered %s, setting the display name: %w", user, err)
		}
	}
	return user, nil
}

// createLoginToken is create_login_token(user_id, duration_in_ms, …) → an
// m.login.token: POST /_matrix/client/v1/login/get_token as the user.
func (h *Host) createLoginToken(ctx context.Context, a []any) (any, error) {
	r := read(a)
	user := h.user(r, 0, "user_id")
	if r.err != nil {
		return nil, r.err
	}
	res, err := h.do(ctx, call{method: "POST", path: "/_matrix/client/v1/login/get_token", query: as(user), body: map[string]any{}, token: h.opts.ASToken})
	if err != nil {
		return nil, err
	}
	return res.(map[string]any)["login_token"], nil
}

// invalidateAccessToken is invalidate_access_token(access_token): POST
// /logout with that token.
func (h *Host) invalidateAccessToken(ctx context.Context, a []any) (any, error) {
	r := read(a)
	token := r.str(0, "access_token")
	if r.err != nil {
		return nil, r.err
	}
	_, err := h.do(ctx, call{method: "POST", path: cs("logout"), body: map[string]any{}, token: token})
	return nil, err
}

// recordUserExternalID is record_user_external_id(auth_provider_id,
// remote_user_id, registered_user_id): Synapse's admin API, adding to the
// user's external_ids.
func (h *Host) recordUserExternalID(ctx context.Context, a []any) (any, error) {
	r := read(a)
	provider := r.str(0, "auth_provider_id")
	remote := r.str(1, "remote_user_id")
	user := h.user(r, 2, "registered_user_id")
	if r.err != nil {
		return nil, r.err
	}
	u, err := h.adminUser(ctx, user)
	if err != nil {
		return nil, err
	}
	ids, _ := u["external_ids"].([]any)
	ids = append(ids, map[string]any{"auth_provider": provider, "external_id": remote})
	_, err = h.do(ctx, call{method: "PUT", path: admin("v2", "users", user), body: map[string]any{"external_ids": ids}, token: h.opts.AdminToken})
	return nil, err
}

// getUserByReq checks an access token (api.get_user_by_req) → user_id:
// GET /account/whoami with it; a refused token raises M_UNKNOWN_TOKEN.
func (h *Host) getUserByReq(ctx context.Context, a []any) (any, error) {
	r := read(a)
	token := r.str(0, "access_token")
	if r.err != nil {
		return nil, r.err
	}
	res, err := h.do(ctx, call{method: "GET", path: cs("account", "whoami"), token: token})
	if isStatus(err, http.StatusUnauthorized, "") || isStatus(err, http.StatusForbidden, "M_UNKNOWN_TOKEN") {
		return nil, &luaapi.MatrixError{Status: http.StatusUnauthorized, Errcode: "M_UNKNOWN_TOKEN", Message: "Unrecognised access token"}
	}
	if err != nil {
		return nil, err
	}
	return res.(map[string]any)["user_id"], nil
}

// getGlobalAccountData is account_data_manager.get_global(user_id, type) →
// the content, or nil.
func (h *Host) getGlobalAccountData(ctx context.Context, a []any) (any, error) {
	r := read(a)
	user := h.user(r, 0, "user_id")
	r.check(h.localUser(user, "user_id"))
	typ := r.str(1, "data_type")
	if r.err != nil {
		return nil, r.err
	}
	res, err := h.do(ctx, call{method: "GET", path: cs("user", user, "account_data", typ), query: as(user), token: h.opts.ASToken})
	if isStatus(err, 404, "") {
		return nil, nil
	}
	return res, err
}

// putGlobalAccountData is account_data_manager.put_global(user_id, type,
// new_data).
func (h *Host) putGlobalAccountData(ctx context.Context, a []any) (any, error) {
	r := read(a)
	user := h.user(r, 0, "user_id")
	r.check(h.localUser(user, "user_id"))
	typ := r.str(1, "data_type")
	data := r.obj(2, "new_data", false)
	if r.err != nil {
		return nil, r.err
	}
	_, err := h.do(ctx, call{method: "PUT", path: cs("user", user, "account_data", typ), query: as(user), body: data, token: h.opts.ASToken})
	return nil, err
}

// setPresenceForUsers is set_presence_for_users({user_id = {state,
// status_msg}}): PUT /presence/{user_id}/status as each local user.
func (h *Host) setPresenceForUsers(ctx context.Context, a []any) (any, error) {
	r := read(a)
	users := r.obj(0, "users", false)
	if r.err != nil {
		return nil, r.err
	}
	for user, v := range users {
		if err := h.localUser(user, "each user"); err != nil {
			return nil, fmt.Errorf("%w (remote presence has no client-server API)", err)
		}
		pair, _ := v.([]any)
		pr := read(pair)
		body := map[string]any{"presence": pr.str(0, "state")}
		if msg := pr.optStr(1, "status_msg"); msg != "" {
			body["status_msg"] = msg
		}
		if pr.err != nil {
			return nil, fmt.Errorf("%s: expected {state, status_msg}: %w", user, pr.err)
		}
		if _, err := h.do(ctx, call{method: "PUT", path: cs("presence", user, "status"), query: as(user), body: body, token: h.opts.ASToken}); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// setPushRuleAction is set_push_rule_action(user_id, scope, kind, rule_id,
// actions): PUT /pushrules/{scope}/{kind}/{rule_id}/actions as the user.
func (h *Host) setPushRuleAction(ctx context.Context, a []any) (any, error) {
	r := read(a)
	user := h.user(r, 0, "user_id")
	scope, kind, rule := r.str(1, "scope"), r.str(2, "kind"), r.str(3, "rule_id")
	actions := r.list(4, "actions")
	if r.err != nil {
		return nil, r.err
	}
	if scope != "global" {
		return nil, fmt.Errorf("scope must be \"global\", not %q", scope)
	}
	if err := checkActions(actions); err != nil {
		return nil, err
	}
	_, err := h.do(ctx, call{method: "PUT", path: cs("pushrules", scope, kind, rule, "actions"), query: as(user), body: map[string]any{"actions": actions}, token: h.opts.ASToken})
	return nil, err
}

// checkPushRuleActions is check_push_rule_actions(actions): raises unless
// the actions are valid per the spec (no homeserver call).
func (h *Host) checkPushRuleActions(_ context.Context, a []any) (any, error) {
	r := read(a)
	actions := r.list(0, "actions")
	if r.err != nil {
		return nil, r.err
	}
	return nil, checkActions(actions)
}

// checkActions validates push rule actions as Synapse's check_actions.
func checkActions(actions []any) error {
	if actions == nil {
		return fmt.Errorf("InvalidRuleException: no actions found")
	}
	for _, act := range actions {
		switch x := act.(type) {
		case string:
			if x != "notify" && x != "dont_notify" && x != "coalesce" {
				return fmt.Errorf("InvalidRuleException: unrecognised action %q", x)
			}
		case map[string]any:
			if _, ok := x["set_tweak"].(string); !ok {
				return fmt.Errorf("InvalidRuleException: unrecognised action %v", x)
			}
		default:
			return fmt.Errorf("InvalidRuleException: unrecognised action %v", act)
		}
	}
	return nil
}
