package httpbridge

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"luamods/engine"
	"luamods/luaapi"
)

// antispamPath is where synapse-http-antispam's base_url points: the
// module POSTs each callback to base_url/<callback>.
const antispamPath = "/_luamods/v1/http_antispam"

// jsonKind is the JSON type a body field must have when it is present.
type jsonKind int

const (
	kindString jsonKind = iota
	kindBool
	kindObject
	kindList
)

func (k jsonKind) String() string {
	return [...]string{"a string", "a boolean", "an object", "a list"}[k]
}

// antispamField is one named argument in a request body: its spellings
// (synapse-http-antispam's first) and its type.
type antispamField struct {
	names []string
	kind  jsonKind
}

// antispamCallback describes a callback synapse-http-antispam forwards.
type antispamCallback struct {
	fields  []antispamField // in the catalog's argument order
	message string          // Synapse's message for a denial at its call site
}

func field(kind jsonKind, names ...string) antispamField { return antispamField{names, kind} }

// antispamCallbackOf returns how the body of callback maps to the
// catalog's positional arguments (spam_checker.<callback>).
func antispamCallbackOf(callback string) (antispamCallback, bool) {
	user := field(kindString, "user", "user_id")
	room := field(kindString, "room", "room_id")
	userID := field(kindString, "user_id", "user")
	roomID := field(kindString, "room_id", "room")
	event := field(kindObject, "event")
	switch callback {
	case "user_may_join_room":
		return antispamCallback{[]antispamField{user, room, field(kindBool, "is_invited")}, "Not allowed to join this room"}, true
	case "user_may_invite":
		return antispamCallback{[]antispamField{field(kindString, "inviter"), field(kindString, "invitee"), roomID}, "Invites have been disabled on this server"}, true
	case "user_may_send_3pid_invite":
		return antispamCallback{[]antispamField{field(kindString, "inviter"), field(kindString, "medium"), field(kindString, "address"), roomID}, "Cannot send threepid invite"}, true
	case "user_may_create_room":
		return antispamCallback{[]antispamField{userID, field(kindObject, "room_config")}, "You are not permitted to create rooms"}, true
	case "user_may_create_room_alias":
		return antispamCallback{[]antispamField{userID, field(kindString, "room_alias")}, "This user is not permitted to create this alias"}, true
	case "user_may_publish_room":
		return antispamCallback{[]antispamField{userID, roomID}, "This user is not permitted to publish rooms to the room list"}, true
	case "check_username_for_spam":
		return antispamCallback{[]antispamField{field(kindObject, "user_profile"), field(kindString, "requester_id")}, "Forbidden"}, true
	case "check_login_for_spam":
		return antispamCallback{[]antispamField{userID, field(kindString, "device_id"), field(kindString, "initial_display_name"),
			field(kindList, "request_info"), field(kindString, "auth_provider_id")}, "Login was blocked by the server"}, true
	case "check_event_for_spam":
		return antispamCallback{[]antispamField{event}, "This message has been rejected as probable spam"}, true
	case "federated_user_may_invite":
		return antispamCallback{[]antispamField{event}, "This user is not permitted to send invites to this server/user"}, true
	}
	return antispamCallback{}, false
}

// antispamArgs maps a request body (a JSON object of named arguments) to
// the callback's positional arguments; absent and null fields are nil.
func antispamArgs(cb antispamCallback, body []byte) ([]any, error) {
	obj, err := jsonObject(body)
	if err != nil {
		return nil, err
	}
	args := make([]any, len(cb.fields))
	for i, f := range cb.fields {
		for _, name := range f.names {
			v, ok := obj[name]
			if !ok {
				continue
			}
			if v != nil && !f.kind.matches(v) {
				return nil, fmt.Errorf("%s must be %s", name, f.kind)
			}
			args[i] = v
			break
		}
	}
	return args, nil
}

// jsonObject decodes a body that must be one JSON object.
func jsonObject(body []byte) (map[string]any, error) {
	v, err := luaapi.DecodeJSON(body)
	if err != nil {
		return nil, fmt.Errorf("the body is not JSON: %w", err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("the body must be a JSON object")
	}
	return obj, nil
}

func (k jsonKind) matches(v any) bool {
	switch v.(type) {
	case string:
		return k == kindString
	case bool:
		return k == kindBool
	case map[string]any:
		return k == kindObject
	case []any:
		return k == kindList
	}
	return false
}

// antispamAnswer is what synapse-http-antispam maps back to the combined
// result: 200 for NOT_SPAM, 403 with the errcode and its fields for a
// denial. ok is false for a result no spam-checker rule produces.
func antispamAnswer(result any, message string) (status int, body map[string]any, ok bool) {
	switch r := result.(type) {
	case nil:
		return http.StatusOK, map[string]any{}, true
	case bool:
		if !r {
			return http.StatusOK, map[string]any{}, true
		}
		return http.StatusForbidden, map[string]any{"errcode": "M_FORBIDDEN", "error": message}, true
	case string:
		if r == luaapi.NotSpam {
			return http.StatusOK, map[string]any{}, true
		}
		// A message (rule B's deprecated string): Synapse denies with it.
		return http.StatusForbidden, map[string]any{"errcode": "M_FORBIDDEN", "error": r}, true
	case luaapi.Tuple:
		if len(r) != 2 {
			return 0, nil, false
		}
		code, isCode := r[0].(string)
		extra, isMap := r[1].(map[string]any)
		if !isCode || !isMap {
			return 0, nil, false
		}
		// Synapse's SynapseError lets the extra fields override errcode and
		// error: the client sees the same body either way.
		body = map[string]any{"errcode": code, "error": message}
		for k, v := range extra {
			body[k] = v
		}
		return http.StatusForbidden, body, true
	}
	return 0, nil, false
}

// antispam answers synapse-http-antispam's POST base_url/<callback>. Every
// answer that is not a verdict (a bad token or body, a module error) is
// plain text, so that the module's own fail_open setting decides.
func (b *Bridge) antispam(c echo.Context) error {
	start := time.Now()
	req := c.Request()
	name := c.Param("callback")
	route := antispamPath + "/" + name
	cb, known := antispamCallbackOf(name)
	if !known && name != "ping" {
		route = antispamPath + "/{unknown}"
	}
	id := b.requestID(c)
	status := b.serveAntispam(c, name, cb, known, id)
	b.countRequest(route, req.Method, status, start)
	return nil
}

func (b *Bridge) serveAntispam(c echo.Context, name string, cb antispamCallback, known bool, id string) int {
	cfg := b.eng.Current().Config.HTTPAntispam
	plain := func(status int, msg string) int { return plainAnswer(c, id, status, msg) }
	if cfg == nil {
		return plain(http.StatusNotFound, "luamods: the http_antispam endpoint is off: set http_antispam.authorization or authorization_path")
	}
	switch checkSecret(c.Request(), cfg.Authorization, false) {
	case secretMissing:
		return plain(http.StatusUnauthorized, "luamods: missing Authorization: Bearer <http_antispam.authorization>")
	case secretWrong:
		return plain(http.StatusForbidden, "luamods: wrong http_antispam authorization token")
	}
	body, err := readBody(c.Request(), cfg.MaxBody)
	if errors.Is(err, errTooLarge) {
		return plain(http.StatusRequestEntityTooLarge, fmt.Sprintf("luamods: request body over http_antispam.max_request_body (%d bytes)", cfg.MaxBody))
	}
	if err != nil {
		return plain(http.StatusBadRequest, "luamods: "+err.Error())
	}
	if he := b.eng.Current().Config.CheckRequestJSON(body); he != nil {
		return plain(he.Status, fmt.Sprint("luamods: ", he.Body["error"]))
	}
	if name == "ping" {
		obj, err := jsonObject(body)
		if err != nil {
			return plain(http.StatusBadRequest, "luamods: ping: "+err.Error())
		}
		b.log.Info("http_antispam: ping", "id", obj["id"], "request_id", id)
		_ = c.JSON(http.StatusOK, map[string]any{"id": obj["id"], "status": "ok"})
		return http.StatusOK
	}
	if !known {
		// Any JSON non-2xx would be a denial: a callback luamods does not
		// know (accept_make_join, from a fork of Synapse) allows.
		if _, err := jsonObject(body); err != nil {
			return plain(http.StatusBadRequest, "luamods: "+name+": "+err.Error())
		}
		b.log.Warn("http_antispam: unknown callback allowed; remove it from enabled_callbacks", "callback", name, "request_id", id)
		_ = c.JSON(http.StatusOK, map[string]any{})
		return http.StatusOK
	}
	args, err := antispamArgs(cb, body)
	if err != nil {
		return plain(http.StatusBadRequest, "luamods: "+name+": "+err.Error())
	}
	return b.antispamVerdict(c, name, cb, args, cfg.Async[name], id)
}

// plainAnswer is a non-verdict answer: text, so the module's fail_open
// decides and its log shows msg.
func plainAnswer(c echo.Context, id string, status int, msg string) int {
	_ = c.String(status, msg+" (request "+id+")\n")
	return status
}

// antispamVerdict runs the callback and answers with its verdict.
func (b *Bridge) antispamVerdict(c echo.Context, name string, cb antispamCallback, args []any, async bool, id string) int {
	plain := func(status int, msg string) int { return plainAnswer(c, id, status, msg) }
	full := "spam_checker." + name
	if async {
		// The module ignores the answer: no module misses the event.
		if _, err := b.eng.InvokeAll(c.Request().Context(), full, args...); err != nil {
			b.log.Error("http_antispam: async callback failed", "callback", full, "request_id", id, "error", err.Error())
			return plain(http.StatusInternalServerError, "luamods: "+full+" failed")
		}
		_ = c.JSON(http.StatusOK, map[string]any{})
		return http.StatusOK
	}
	// Synapse itself runs user_may_invite after federated_user_may_invite
	// allows (over HTTP too, when it is enabled): not here as well.
	res, err := b.eng.InvokeOnly(c.Request().Context(), full, args...)
	if err != nil {
		// A module's error table (Synapse's SynapseError) is an answer for
		// the client; any other failure (an error, a timeout, an overload)
		// is the module's fail_open's to decide.
		if status, answer, ok := errorTable(err); ok {
			b.log.Info("http_antispam: denied by an error table", "callback", full, "status", status, "errcode", answer["errcode"], "request_id", id)
			_ = c.JSON(status, answer)
			return status
		}
		b.log.Error("http_antispam: callback failed; the module's fail_open decides", "callback", full, "request_id", id, "error", err.Error())
		if errors.Is(err, luaapi.ErrOverloaded) {
			setAnswerHeader(c, err)
			return plain(http.StatusServiceUnavailable, "luamods: "+full+" overloaded (max_queued_calls)")
		}
		return plain(http.StatusInternalServerError, "luamods: "+full+" failed")
	}
	status, answer, ok := antispamAnswer(res, cb.message)
	if !ok {
		b.log.Error("http_antispam: unexpected result; the module's fail_open decides", "callback", full, "request_id", id, "result", fmt.Sprint(res))
		return plain(http.StatusInternalServerError, "luamods: "+full+" gave an unexpected result")
	}
	if status != http.StatusOK {
		b.log.Info("http_antispam: denied", "callback", full, "errcode", answer["errcode"], "request_id", id)
	}
	_ = c.JSON(status, answer)
	return status
}

// errorTable is the answer for an error table a module raised
// ({status=, errcode=, error=}), and false for any other error.
func errorTable(err error) (int, map[string]any, bool) {
	if se := (*luaapi.ScriptError)(nil); !errors.As(err, &se) {
		return 0, nil, false
	}
	status, answer := engine.HTTPAnswer(err)
	return status, answer, status != http.StatusInternalServerError
}
