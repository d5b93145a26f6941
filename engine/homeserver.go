package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"strings"

	"luamods/luaapi"
	"luamods/matrixhost"
)

// homeserverLink is a generation's homeserver: the Host behind the api
// methods and the hs_token the appservice feed must present.
type homeserverLink struct {
	host    *matrixhost.Host
	hsToken string
	secrets string // the registration and admin token files' hashes: a reload rereads them when they change
}

// homeserverSecrets hashes the files homeserver: names ("" without it).
func homeserverSecrets(cfg *Config) string {
	hs := cfg.Homeserver
	if hs == nil {
		return ""
	}
	sum := luaapi.FileHash(hs.Registration)
	if hs.AdminTokenPath != "" {
		sum += "," + luaapi.FileHash(hs.AdminTokenPath)
	}
	return sum
}

// homeserverStale reports whether the registration or the admin token
// changed since the serving generation read them: a reload then rebuilds
// even with the configuration and scripts unchanged.
func (e *Engine) homeserverStale(cfg *Config) bool {
	link := e.homeserver.Load()
	if link == nil {
		return false // none, or the configuration's change is seen anyway
	}
	return link.secrets != homeserverSecrets(cfg)
}

// connectHomeserver reads the registration and the admin token that cfg's
// homeserver: names; nil without a homeserver: section, or when the
// embedding server (or luamods test's fake) gives its own Host.
func (e *Engine) connectHomeserver(cfg *Config) (*homeserverLink, error) {
	hs := cfg.Homeserver
	if hs == nil || e.opts.Host != nil {
		return nil, nil
	}
	reg, err := LoadRegistration(hs.Registration)
	if err != nil {
		msg := err.Error()
		if errors.Is(err, fs.ErrNotExist) {
			msg += " (write it with: luamods registration -c " + cfg.Path + ")"
		}
		return nil, &ConfigError{File: cfg.Path, Path: []string{"homeserver", "registration"}, Msg: msg}
	}
	var adminToken string
	if hs.AdminTokenPath != "" {
		b, err := os.ReadFile(hs.AdminTokenPath)
		if err != nil {
			return nil, &ConfigError{File: cfg.Path, Path: []string{"homeserver", "admin_token_path"}, Msg: err.Error()}
		}
		adminToken = strings.TrimSpace(string(b))
	}
	if cfg.ServerName == "" {
		return nil, &ConfigError{File: cfg.Path, Path: []string{"server_name"}, Msg: "the homeserver's server_name is required with homeserver:"}
	}
	host, err := matrixhost.New(matrixhost.Options{
		URL: hs.URL, ServerName: cfg.ServerName, ASToken: reg.ASToken, SenderLocalpart: reg.SenderLocalpart,
		AdminToken: adminToken, AdminTokenPath: "homeserver.admin_token_path", Logger: e.log,
	})
	if err != nil {
		return nil, &ConfigError{File: cfg.Path, Path: []string{"homeserver"}, Msg: err.Error()}
	}
	return &homeserverLink{host: host, hsToken: reg.HSToken, secrets: homeserverSecrets(cfg)}, nil
}

// moduleHost is the Host the modules' api methods use: Options.Host when
// the embedding server gives one, else the configured homeserver of the
// moment (modules carried over a reload follow the new configuration).
func (e *Engine) moduleHost() luaapi.Host {
	if e.opts.Host != nil {
		return e.opts.Host
	}
	return currentHomeserver{e}
}

// currentHomeserver forwards to the homeserver of the latest configuration.
type currentHomeserver struct{ e *Engine }

// CallHost runs the method on the configured homeserver, or fails with
// luaapi.ErrNoHost when there is none.
func (c currentHomeserver) CallHost(ctx context.Context, method string, args []any) (any, error) {
	link := c.e.homeserver.Load()
	if link == nil {
		return nil, luaapi.ErrNoHost
	}
	return link.host.CallHost(ctx, method, args)
}

// Appservice is the handler of the appservice API the homeserver pushes
// events to (/_matrix/app/v1/…, and the legacy /transactions/…): each event
// becomes third_party_rules.on_new_event, in the background. Transaction
// ids are remembered for the engine's life, across reloads.
func (e *Engine) Appservice() http.Handler { return e.appservice }

// appserviceFeed delivers the receiver's events to the engine.
type appserviceFeed struct{ e *Engine }

// HSToken is the configured registration's hs_token, "" without a homeserver.
func (f appserviceFeed) HSToken() string {
	if link := f.e.homeserver.Load(); link != nil {
		return link.hsToken
	}
	return ""
}

// Deliver runs third_party_rules.on_new_event(event, state_events) on the
// current generation; the room state is fetched only when a module
// registered the callback. Failures are logged, as Synapse does.
func (f appserviceFeed) Deliver(ctx context.Context, event map[string]any) {
	e := f.e
	link := e.homeserver.Load()
	if link == nil {
		return
	}
	link.host.Observe(event)
	gen, release := e.Acquire()
	defer release()
	const callback = "third_party_rules.on_new_event"
	if len(gen.hooks[callback]) == 0 {
		return
	}
	state, err := link.host.EventState(ctx, event)
	if err != nil {
		e.log.Warn(callback+": the room state could not be read; the modules get an empty one", "event_id", event["event_id"], "room_id", event["room_id"], "error", err.Error())
		state = map[string]any{}
	}
	if _, err := gen.Invoke(ctx, callback, event, state); err != nil && !errors.Is(err, context.Canceled) {
		e.log.Error(fmt.Sprintf("%s failed", callback), "event_id", event["event_id"], "error", err.Error())
	}
}
