package luaapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// MatrixError is a homeserver's refusal, raised in Lua as the error table
// {status=, errcode=, error=} (Synapse's SynapseError): uncaught in a web
// resource, it becomes that response.
type MatrixError struct {
	Status  int    // HTTP status, such as 401
	Errcode string // Matrix errcode, such as M_UNKNOWN_TOKEN
	Message string // the human-readable error
}

// Error is "<errcode> (<status>): <message>".
func (e *MatrixError) Error() string {
	return fmt.Sprintf("%s (%d): %s", e.Errcode, e.Status, e.Message)
}

// LuaValue is the error table {status=, errcode=, error=}.
func (e *MatrixError) LuaValue(L *lua.LState) lua.LValue {
	t := L.CreateTable(0, 3)
	t.RawSetString("status", lua.LNumber(e.Status))
	t.RawSetString("errcode", lua.LString(e.Errcode))
	t.RawSetString("error", lua.LString(e.Message))
	return t
}

// installMatrixFields sets api.email_app_name and api.get_user_by_req.
func (s *State) installMatrixFields(api *lua.LTable) {
	env := s.opts.Env
	app := env.EmailAppName
	if app == "" {
		app = env.ServerName
	}
	api.RawSetString("email_app_name", lua.LString(app))
	api.RawSetString("get_user_by_req", s.asyncLua("get_user_by_req", s.parseGetUserByReq))
}

// parseGetUserByReq is api.get_user_by_req(request): the access token of a
// web resource's request (Authorization: Bearer, else ?access_token=) is
// checked by the Host ("get_user_by_req" with the token), which answers the
// user id. No token raises {status=401, errcode="M_MISSING_TOKEN"}, as
// Synapse does.
func (s *State) parseGetUserByReq(L *lua.LState) (AsyncFunc, error) {
	token := requestToken(L, L.CheckTable(1))
	host := s.opts.Env.Host
	return func(ctx context.Context) (func(*lua.LState) []lua.LValue, error) {
		if token == "" {
			return nil, &MatrixError{Status: http.StatusUnauthorized, Errcode: "M_MISSING_TOKEN", Message: "Missing access token"}
		}
		if host == nil {
			return nil, ErrNoHost
		}
		res, err := host.CallHost(ctx, "get_user_by_req", []any{token})
		if err != nil {
			return nil, err
		}
		return func(L *lua.LState) []lua.LValue { return ValuesToLua(L, res) }, nil
	}, nil
}

// requestToken reads the access token of a request table (whose headers
// may be built on first read, through its metatable).
func requestToken(L *lua.LState, req *lua.LTable) string {
	if headers, ok := L.GetField(req, "headers").(*lua.LTable); ok {
		if auth, ok := headers.RawGetString("authorization").(lua.LString); ok {
			scheme, token, found := strings.Cut(strings.TrimSpace(string(auth)), " ")
			if found && strings.EqualFold(scheme, "Bearer") {
				return strings.TrimSpace(token)
			}
		}
	}
	if query, ok := L.GetField(req, "query").(*lua.LTable); ok {
		if t, ok := query.RawGetString("access_token").(lua.LString); ok {
			return string(t)
		}
	}
	return ""
}
