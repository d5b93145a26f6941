package matrixhost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
)

// Options configure a Host.
type Options struct {
	URL             string       // the homeserver's client-server API, e.g. http://127.0.0.1:8008
	ServerName      string       // the homeserver's server_name: which users are local
	ASToken         string       // the appservice's as_token (from the registration)
	SenderLocalpart string       // the appservice's own user (from the registration)
	AdminToken      string       // a server admin's access token for Synapse's admin API; "": none
	AdminTokenPath  string       // where AdminToken came from, named in errors; "": admin_token_path
	Client          *http.Client // nil: a client with DefaultTimeout
	Logger          *slog.Logger // nil: slog.Default()
}

// Host is a luaapi.Host backed by a homeserver. It is safe for concurrent
// use; every call honours its context's deadline.
type Host struct {
	opts    Options
	base    string
	client  *http.Client
	log     *slog.Logger
	members *members
	methods map[string]method
}

// method is one api method: args as Lua passed them, JSON-like.
type method func(ctx context.Context, args []any) (any, error)

// New returns the Host for o.
func New(o Options) (*Host, error) {
	if o.URL == "" || o.ASToken == "" || o.ServerName == "" {
		return nil, errors.New("matrixhost: the homeserver URL, the as_token and the server_name are required")
	}
	if o.SenderLocalpart == "" {
		o.SenderLocalpart = "luamods"
	}
	if o.AdminTokenPath == "" {
		o.AdminTokenPath = "homeserver.admin_token_path"
	}
	h := &Host{opts: o, base: strings.TrimRight(o.URL, "/"), client: o.Client, log: o.Logger, members: newMembers()}
	if h.client == nil {
		h.client = &http.Client{Timeout: DefaultTimeout}
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	h.methods = h.methodTable()
	return h, nil
}

// ErrUnsupported is the cause of a method no homeserver API offers.
var ErrUnsupported = errors.New("not available through the homeserver's HTTP APIs")

// CallHost runs the api method (luaapi.HostMethods, "<manager>.<method>",
// or "get_user_by_req" with the access token).
func (h *Host) CallHost(ctx context.Context, name string, args []any) (any, error) {
	m, ok := h.methods[name]
	if !ok {
		return nil, fmt.Errorf("matrixhost: unknown method %q", name)
	}
	return m(ctx, args)
}

// unsupported is a method with no HTTP API anywhere.
func unsupported(what string) method {
	return func(context.Context, []any) (any, error) {
		return nil, fmt.Errorf("%w: %s", ErrUnsupported, what)
	}
}

// adminToken returns the admin token, or an error naming the endpoint that
// needs it.
func (h *Host) adminToken(endpoint string) (string, error) {
	if h.opts.AdminToken == "" {
		return "", fmt.Errorf("needs Synapse's admin API (%s) and no admin token is configured (set %s to a file holding a server admin's access token)", endpoint, h.opts.AdminTokenPath)
	}
	return h.opts.AdminToken, nil
}

// sender is the appservice's own user id.
func (h *Host) sender() string { return "@" + h.opts.SenderLocalpart + ":" + h.opts.ServerName }

// isMine reports whether a user id (or alias) is of this server.
func (h *Host) isMine(id string) bool {
	_, server, ok := strings.Cut(id, ":")
	return ok && server == h.opts.ServerName
}

// qualify turns a localpart into a local user id.
func (h *Host) qualify(localpart string) string {
	if strings.HasPrefix(localpart, "@") {
		return localpart
	}
	return "@" + localpart + ":" + h.opts.ServerName
}

// localUser checks that id is a local user id, as Synapse's methods do.
func (h *Host) localUser(id, what string) error {
	if !strings.HasPrefix(id, "@") || !h.isMine(id) {
		return fmt.Errorf("%s must be a user of this server (%s), not %q", what, h.opts.ServerName, id)
	}
	return nil
}

// argReader reads positional arguments as Lua passed them; the first
// problem sticks in err, so a method reads them all, then checks once.
type argReader struct {
	a   []any
	err error
}

func read(a []any) *argReader { return &argReader{a: a} }

// check keeps err when it is the first problem.
func (r *argReader) check(err error) {
	if r.err == nil {
		r.err = err
	}
}

// str is argument i as a non-empty string; name is for the error.
func (r *argReader) str(i int, name string) string {
	if i < len(r.a) {
		if s, ok := r.a[i].(string); ok && s != "" {
			return s
		}
	}
	r.check(fmt.Errorf("argument %d (%s) must be a non-empty string", i+1, name))
	return ""
}

// optStr is argument i as a string, "" when absent or nil.
func (r *argReader) optStr(i int, name string) string {
	if i >= len(r.a) || r.a[i] == nil {
		return ""
	}
	s, ok := r.a[i].(string)
	if !ok {
		r.check(fmt.Errorf("argument %d (%s) must be a string or nil", i+1, name))
	}
	return s
}

// obj is argument i as a table of fields (nil when absent and optional).
func (r *argReader) obj(i int, name string, optional bool) map[string]any {
	var v any
	if i < len(r.a) {
		v = r.a[i]
	}
	switch x := v.(type) {
	case map[string]any:
		return x
	case []any:
		if len(x) == 0 {
			return map[string]any{}
		}
	case nil:
		if optional {
			return nil
		}
	}
	r.check(fmt.Errorf("argument %d (%s) must be a table of fields", i+1, name))
	return nil
}

// list is argument i as a list (nil when absent or nil).
func (r *argReader) list(i int, name string) []any {
	if i >= len(r.a) || r.a[i] == nil {
		return nil
	}
	switch x := r.a[i].(type) {
	case []any:
		return x
	case map[string]any:
		if len(x) == 0 {
			return []any{}
		}
	}
	r.check(fmt.Errorf("argument %d (%s) must be a list", i+1, name))
	return nil
}

// boolean is argument i as a boolean (def when absent or not one).
func (r *argReader) boolean(i int, def bool) bool {
	if i < len(r.a) {
		if b, ok := r.a[i].(bool); ok {
			return b
		}
	}
	return def
}

// num is argument i as an integer (def when absent or nil).
func (r *argReader) num(i int, name string, def int64) int64 {
	if i >= len(r.a) || r.a[i] == nil {
		return def
	}
	switch v := r.a[i].(type) {
	case int64:
		return v
	case float64:
		return int64(v)
	}
	r.check(fmt.Errorf("argument %d (%s) must be a number", i+1, name))
	return def
}

// user reads argument i as a user id (a localpart is qualified).
func (h *Host) user(r *argReader, i int, name string) string {
	if u := r.str(i, name); u != "" {
		return h.qualify(u)
	}
	return ""
}
