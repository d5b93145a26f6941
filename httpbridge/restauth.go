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

// restAuthPath is the path the REST password provider appends to its
// endpoint.
const restAuthPath = "/_matrix-internal/identity/v1/check_credentials"

// restAuthArgs reads {"user": {"id": ..., "password": ...}}: the user's
// Matrix ID and password.
func restAuthArgs(body []byte) (userID, password string, err error) {
	obj, err := jsonObject(body)
	if err != nil {
		return "", "", err
	}
	user, ok := obj["user"].(map[string]any)
	if !ok {
		return "", "", errors.New("user must be an object with id and password")
	}
	userID, ok = user["id"].(string)
	if !ok || userID == "" {
		return "", "", errors.New("user.id must be a non-empty string")
	}
	password, ok = user["password"].(string)
	if !ok {
		return "", "", errors.New("user.password must be a string")
	}
	return userID, password, nil
}

// restAuthAnswer is the provider's answer for the combined auth_checkers
// result: success when a checker vouched for userID, with the profile of
// its optional second return value.
func restAuthAnswer(userID string, result any) (auth map[string]any, mismatch string) {
	t, ok := result.(luaapi.Tuple)
	if !ok || len(t) != 2 {
		return map[string]any{"success": false}, ""
	}
	mxid, _ := t[0].(string)
	if mxid != userID {
		// The provider logs in the user it asked about, whatever the
		// answer's mxid says: only a check for that very user counts.
		return map[string]any{"success": false}, mxid
	}
	profile, _ := t[1].(map[string]any)
	if profile == nil {
		profile = map[string]any{}
	}
	return map[string]any{"success": true, "mxid": mxid, "profile": profile}, ""
}

// restAuth answers the REST password provider's POST
// /_matrix-internal/identity/v1/check_credentials by running the
// m.login.password auth_checkers. The provider sends no header of its own,
// so the secret may also come as the password of HTTP Basic credentials
// (http://luamods:SECRET@host:port as its endpoint).
func (b *Bridge) restAuth(c echo.Context) error {
	start := time.Now()
	id := b.requestID(c)
	status := b.serveRestAuth(c, id)
	b.countRequest(restAuthPath, c.Request().Method, status, start)
	return nil
}

func (b *Bridge) serveRestAuth(c echo.Context, id string) int {
	cfg := b.eng.Current().Config.RestAuth
	fail := func(status int, code, msg string) int {
		_ = matrixError(c, status, code, msg)
		return status
	}
	if cfg == nil {
		return fail(http.StatusNotFound, "M_UNRECOGNIZED", "The rest_auth endpoint is off: set rest_auth.authorization or authorization_path")
	}
	switch checkSecret(c.Request(), cfg.Authorization, true) {
	case secretMissing:
		return fail(http.StatusUnauthorized, "M_MISSING_TOKEN", "Missing rest_auth secret (Bearer token or Basic password)")
	case secretWrong:
		return fail(http.StatusForbidden, "M_FORBIDDEN", "Wrong rest_auth secret")
	}
	body, err := readBody(c.Request(), cfg.MaxBody)
	if errors.Is(err, errTooLarge) {
		return fail(http.StatusRequestEntityTooLarge, "M_TOO_LARGE", fmt.Sprintf("Request body over rest_auth.max_request_body (%d bytes)", cfg.MaxBody))
	}
	if err != nil {
		return fail(http.StatusBadRequest, "M_UNKNOWN", err.Error())
	}
	if he := b.eng.Current().Config.CheckRequestJSON(body); he != nil {
		_ = c.JSON(he.Status, he.Body)
		return he.Status
	}
	userID, password, err := restAuthArgs(body)
	if err != nil {
		return fail(http.StatusBadRequest, "M_BAD_JSON", err.Error())
	}
	const name = "password_auth_provider.auth_checkers"
	res, err := b.eng.Invoke(c.Request().Context(), name, userID, "m.login.password", map[string]any{"password": password})
	if err != nil {
		b.log.Error("rest_auth: auth_checkers failed", "user", userID, "request_id", id, "error", err.Error())
		status, answer := engine.HTTPAnswer(err)
		setAnswerHeader(c, err)
		_ = c.JSON(status, answer)
		return status
	}
	auth, mismatch := restAuthAnswer(userID, res)
	if mismatch != "" {
		b.log.Warn("rest_auth: a checker vouched for another user; refused", "user", userID, "returned", mismatch, "request_id", id)
	}
	b.log.Info("rest_auth: checked credentials", "user", userID, "success", auth["success"], "request_id", id)
	_ = c.JSON(http.StatusOK, map[string]any{"auth": auth})
	return http.StatusOK
}
