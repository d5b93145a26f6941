package httpbridge

import (
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"luamods/engine"
	"luamods/luaapi"
)

// maxInvokeBody bounds the JSON arguments of an invoke request.
const maxInvokeBody = 10 << 20

// MountAdmin registers the admin API on g (design §5): POST
// invoke/{category}/{callback}, POST reload, GET modules. Every request
// needs the configured bearer token; with none configured the API is off.
func (b *Bridge) MountAdmin(g *echo.Group) {
	g.Use(b.requireToken)
	g.POST("/invoke/:category/:callback", b.invoke)
	g.POST("/reload", b.reload)
	g.GET("/modules", b.modules)
	g.Any("/*", func(c echo.Context) error {
		return matrixError(c, http.StatusNotFound, "M_UNRECOGNIZED", "Unrecognized request")
	})
}

func (b *Bridge) requireToken(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		token := b.eng.Current().Config.AdminToken
		if token == "" {
			return matrixError(c, http.StatusNotFound, "M_UNRECOGNIZED", "The admin API is off: set admin_token or admin_token_file")
		}
		switch checkSecret(c.Request(), token, false) {
		case secretMissing:
			return matrixError(c, http.StatusUnauthorized, "M_MISSING_TOKEN", "Missing access token")
		case secretWrong:
			return matrixError(c, http.StatusUnauthorized, "M_UNKNOWN_TOKEN", "Unknown access token")
		}
		return next(c)
	}
}

func (b *Bridge) invoke(c echo.Context) error {
	name := c.Param("category") + "." + c.Param("callback")
	if _, ok := b.eng.Catalog().Lookup(name); !ok {
		return matrixError(c, http.StatusNotFound, "M_NOT_FOUND", "Unknown callback "+name)
	}
	data, err := io.ReadAll(io.LimitReader(c.Request().Body, maxInvokeBody+1))
	if err != nil || len(data) > maxInvokeBody {
		return matrixError(c, http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "Request body too large")
	}
	if he := b.eng.Current().Config.CheckRequestJSON(data); he != nil {
		return c.JSON(he.Status, he.Body)
	}
	args, err := DecodeArgs(data)
	if err != nil {
		return matrixError(c, http.StatusBadRequest, "M_BAD_JSON", err.Error())
	}
	res, err := b.eng.Invoke(c.Request().Context(), name, args...)
	if err != nil {
		// The host that asked gets the answer it should give its own
		// client; the admin API is trusted, so a 500 says what failed.
		status, answer := engine.HTTPAnswer(err)
		body := maps.Clone(answer)
		body["callback"] = name
		if ce := (*engine.CallbackError)(nil); errors.As(err, &ce) {
			body["module"] = ce.Module
		}
		if status == http.StatusInternalServerError {
			body["error"] = err.Error()
		}
		setAnswerHeader(c, err)
		return c.JSON(status, body)
	}
	return c.JSON(http.StatusOK, map[string]any{"result": res})
}

// DecodeArgs reads a JSON array of arguments.
func DecodeArgs(data []byte) ([]any, error) {
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, nil
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, errors.New("the body must be a JSON array of arguments")
	}
	args := make([]any, len(raw))
	for i, r := range raw {
		v, err := luaapi.DecodeJSON(r)
		if err != nil {
			return nil, err
		}
		args[i] = v
	}
	return args, nil
}

func (b *Bridge) reload(c echo.Context) error {
	report, err := b.eng.Reload(c.Request().Context())
	if err != nil {
		return c.JSON(http.StatusInternalServerError, map[string]any{"errcode": "M_UNKNOWN", "error": err.Error()})
	}
	return c.JSON(http.StatusOK, report)
}

// moduleInfo is one module in GET modules.
type moduleInfo struct {
	Module    string   `json:"module"`
	File      string   `json:"file"`
	Hash      string   `json:"hash"`
	Callbacks []string `json:"callbacks"`
	Routes    []string `json:"routes"`
	States    int      `json:"states"`
	Inflight  int64    `json:"inflight"`
	Queued    int64    `json:"queued"` // of Inflight, the calls not started yet (max_queued_calls)
	Timers    int64    `json:"timers"` // live looping and delayed calls (max_timers)
}

func (b *Bridge) modules(c echo.Context) error {
	gen := b.eng.Current()
	out := make([]moduleInfo, 0, len(gen.Modules))
	for _, m := range gen.Modules {
		info := moduleInfo{Module: m.Name, File: m.File, Hash: m.Hash, States: m.Config.Instances, Callbacks: []string{}, Routes: append([]string{}, gen.RoutesOf(m)...)}
		for _, cb := range gen.Callbacks(m) {
			name := cb.Category + "." + cb.Name
			if cb.Key != "" {
				name += "/" + cb.Key
			}
			info.Callbacks = append(info.Callbacks, name)
		}
		info.Inflight, info.Queued, info.Timers = m.Inflight(), m.Queued(), m.Timers()
		out = append(out, info)
	}
	return c.JSON(http.StatusOK, map[string]any{"generation": gen.ID, "modules": out})
}
