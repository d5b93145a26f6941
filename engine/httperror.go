package engine

import (
	"errors"
	"fmt"
	"net/http"

	"luamods/luaapi"
)

// HTTPError is an error that calls for a given HTTP answer: a status and a
// Matrix error body ({"errcode": ..., "error": ..., extra fields}).
// HTTPAnswer passes it through as it is.
type HTTPError struct {
	Status int
	Body   map[string]any
	Header http.Header // extra response headers (Allow for a 405); may be nil
	Err    error       // the cause, for logs; may be nil
}

// NewHTTPError is the answer status with {"errcode": errcode, "error": msg}.
func NewHTTPError(status int, errcode, msg string) *HTTPError {
	return &HTTPError{Status: status, Body: map[string]any{"errcode": errcode, "error": msg}}
}

// Error is the cause, else the status and the message.
func (e *HTTPError) Error() string {
	if e.Err != nil {
		return e.Err.Error()
	}
	return fmt.Sprintf("%d %v: %v", e.Status, e.Body["errcode"], e.Body["error"])
}

// Unwrap returns the cause.
func (e *HTTPError) Unwrap() error { return e.Err }

// internalError is the answer to every error that calls for no other
// (design §5): nothing about the failure reaches the client.
func internalError() map[string]any {
	return map[string]any{"errcode": "M_UNKNOWN", "error": "Internal server error"}
}

// HTTPAnswer is the HTTP answer an error calls for, the one mapping used by
// module web resources, the admin invoke API, the host protocols and
// embedders:
//   - an *HTTPError in the chain: its status and body;
//   - an error table a module raised ({status=, errcode=, error=, ...},
//     Synapse's SynapseError): that status and the table without status;
//   - a callback refused by its on-error policy (on_create_room): 403;
//   - a login without the fields its checkers declared: 400 M_MISSING_PARAM;
//   - a call every state of its module refused, their queues full
//     (luaapi.ErrOverloaded): 503 M_LIMIT_EXCEEDED, with Retry-After: 1
//     (HTTPAnswerHeader);
//   - anything else: 500 {"errcode": "M_UNKNOWN", "error": "Internal server error"}.
func HTTPAnswer(err error) (status int, body map[string]any) {
	if he := (*HTTPError)(nil); errors.As(err, &he) {
		return he.Status, he.Body
	}
	if errors.Is(err, luaapi.ErrOverloaded) {
		status, body, _ = overloadedAnswer()
		return status, body
	}
	if status, body, ok := synapseErrorOf(err); ok {
		return status, body
	}
	if mp := (*MissingParamsError)(nil); errors.As(err, &mp) {
		return http.StatusBadRequest, map[string]any{"errcode": "M_MISSING_PARAM", "error": mp.Error()}
	}
	if ce := (*CallbackError)(nil); errors.As(err, &ce) && ce.Status == http.StatusForbidden {
		return http.StatusForbidden, map[string]any{"errcode": "M_UNKNOWN", "error": "Room creation forbidden with these parameters"}
	}
	return http.StatusInternalServerError, internalError()
}

// HTTPAnswerHeader is the headers the answer to err carries besides
// Content-Type: an *HTTPError's Header (Allow for a 405), Retry-After for
// a call refused because its module's queues were full; nil for others.
func HTTPAnswerHeader(err error) http.Header {
	if he := (*HTTPError)(nil); errors.As(err, &he) {
		return he.Header
	}
	if errors.Is(err, luaapi.ErrOverloaded) {
		_, _, h := overloadedAnswer()
		return h
	}
	return nil
}

// synapseErrorOf reads the error table of a script error, if it is one.
func synapseErrorOf(err error) (int, map[string]any, bool) {
	if se := (*luaapi.ScriptError)(nil); errors.As(err, &se) {
		return synapseError(se.Value)
	}
	return 0, nil, false
}

// synapseError reads an error table {status=, errcode=, error=, ...}: the
// Lua form of Synapse's SynapseError. Extra fields are kept in the body; a
// missing or impossible status is 400, a missing errcode M_UNKNOWN.
func synapseError(v any) (status int, body map[string]any, ok bool) {
	m, isMap := v.(map[string]any)
	if !isMap {
		return 0, nil, false
	}
	code, hasCode := m["errcode"].(string)
	st, hasStatus := m["status"].(int64)
	if !hasCode && !hasStatus {
		return 0, nil, false
	}
	if !hasStatus || st < 400 || st > 599 {
		st = 400
	}
	if !hasCode {
		code = "M_UNKNOWN"
	}
	body = make(map[string]any, len(m))
	for k, v := range m {
		if k != "status" {
			body[k] = v
		}
	}
	body["errcode"] = code
	if _, ok := body["error"]; !ok {
		body["error"] = code
	}
	return int(st), body, true
}
