package httpbridge

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// MountProtocols registers the endpoints homeserver modules call
// (docs/synapse.md): synapse-http-antispam's and the REST password
// provider's. Each is off until its section (http_antispam, rest_auth)
// gives the shared secret.
func (b *Bridge) MountProtocols(e *echo.Echo) {
	e.POST(antispamPath+"/:callback", b.antispam)
	e.POST(restAuthPath, b.restAuth)
}

// errTooLarge is a request body over the endpoint's limit.
var errTooLarge = errors.New("request body too large")

// readBody reads the request body, refusing more than limit bytes.
func readBody(req *http.Request, limit int64) ([]byte, error) {
	if req.ContentLength > limit {
		return nil, errTooLarge
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading the request body: %w", err)
	}
	if int64(len(body)) > limit {
		return nil, errTooLarge
	}
	return body, nil
}

// secretCheck is the outcome of comparing a request's credentials with a
// protocol's shared secret.
type secretCheck int

const (
	secretOK secretCheck = iota
	secretMissing
	secretWrong
)

// checkSecret compares, in constant time, the request's bearer token (or,
// when basic is set, the password of HTTP Basic credentials, for clients
// that can only put userinfo in a URL) with secret.
func checkSecret(req *http.Request, secret string, basic bool) secretCheck {
	header := req.Header.Get("Authorization")
	got, ok := strings.CutPrefix(header, "Bearer ")
	if !ok && basic {
		_, got, ok = req.BasicAuth()
	}
	if !ok {
		return secretMissing
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(secret)) != 1 {
		return secretWrong
	}
	return secretOK
}

// countRequest records a protocol request in the route metrics, as module
// web resources are.
func (b *Bridge) countRequest(route, method string, status int, start time.Time) {
	b.eng.ObserveRoute(route, method, status, time.Since(start))
}
