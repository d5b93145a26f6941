package matrixhost

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"luamods/luaapi"
)

// maxResponse bounds what is read of one homeserver answer.
const maxResponse = 32 << 20

// DefaultTimeout bounds one homeserver request when the caller's context
// has no earlier deadline.
const DefaultTimeout = 30 * time.Second

// call is one request to the homeserver.
type call struct {
	method string     // GET, PUT, …
	path   string     // e.g. /_matrix/client/v3/rooms/!r:x/state (escaped parts)
	query  url.Values // nil: none
	body   any        // JSON body; nil: none
	token  string     // the bearer token
}

// endpoint is "METHOD path" for errors.
func (c *call) endpoint() string { return c.method + " " + c.path }

// do sends c and decodes the JSON answer (numbers kept exact). A non-2xx
// answer is a *luaapi.MatrixError (raised in Lua as {status, errcode,
// error}); no answer is an error naming the endpoint.
func (h *Host) do(ctx context.Context, c call) (any, error) {
	u := h.base + c.path
	if len(c.query) > 0 {
		u += "?" + c.query.Encode()
	}
	var body io.Reader
	if c.body != nil {
		b, err := json.Marshal(c.body)
		if err != nil {
			return nil, fmt.Errorf("%s: encoding the body: %w", c.endpoint(), err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, c.method, u, body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.endpoint(), err)
	}
	if c.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: homeserver at %s unreachable: %w", c.endpoint(), h.base, unwrapURLError(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("%s: reading the answer: %w", c.endpoint(), err)
	}
	if len(raw) > maxResponse {
		return nil, fmt.Errorf("%s: the answer is larger than %d bytes", c.endpoint(), maxResponse)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, answerError(c, resp.StatusCode, raw)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return map[string]any{}, nil
	}
	v, err := luaapi.DecodeJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: the answer is not JSON: %w", c.endpoint(), err)
	}
	return v, nil
}

// answerError turns a refusal into a MatrixError whose message names the
// endpoint.
func answerError(c call, status int, raw []byte) error {
	var body struct {
		Errcode string `json:"errcode"`
		Error   string `json:"error"`
	}
	_ = json.Unmarshal(raw, &body)
	if body.Errcode == "" {
		body.Errcode = "M_UNKNOWN"
		if status == http.StatusNotFound {
			body.Errcode = "M_UNRECOGNIZED"
		}
	}
	if body.Error == "" {
		body.Error = http.StatusText(status)
	}
	return &luaapi.MatrixError{Status: status, Errcode: body.Errcode, Message: body.Error + " (" + c.endpoint() + ")"}
}

// unwrapURLError drops net/http's "Put \"url\": " prefix, which repeats
// the endpoint.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// isStatus reports whether err is the homeserver's answer with that status
// (and errcode, when given).
func isStatus(err error, status int, errcode string) bool {
	var me *luaapi.MatrixError
	return errors.As(err, &me) && me.Status == status && (errcode == "" || me.Errcode == errcode)
}

// unrecognized reports whether the homeserver does not know the endpoint
// (Dendrite has no Synapse admin API).
func unrecognized(err error) bool {
	var me *luaapi.MatrixError
	return errors.As(err, &me) && (me.Status == http.StatusNotFound || me.Status == http.StatusMethodNotAllowed) && me.Errcode == "M_UNRECOGNIZED"
}

// pathEscape escapes one path segment (a room id, a user id, an event type).
func pathEscape(s string) string { return url.PathEscape(s) }

// cs is a client-server API path: /_matrix/client/v3 + the segments,
// escaped.
func cs(segments ...string) string { return apiPath("/_matrix/client/v3", segments) }

// admin is a Synapse admin API path under /_synapse/admin.
func admin(segments ...string) string { return apiPath("/_synapse/admin", segments) }

func apiPath(prefix string, segments []string) string {
	var b strings.Builder
	b.WriteString(prefix)
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(pathEscape(s))
	}
	return b.String()
}

// as is the query that makes the appservice act as user.
func as(user string) url.Values { return url.Values{"user_id": {user}} }
