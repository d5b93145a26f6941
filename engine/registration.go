package engine

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// Registration is an appservice registration file, the one the homeserver
// loads (Synapse's app_service_config_files, Dendrite's
// app_service_api.config_files) and the single source of both tokens.
type Registration struct {
	ID              string                 `yaml:"id"`
	URL             string                 `yaml:"url"`
	ASToken         string                 `yaml:"as_token"`
	HSToken         string                 `yaml:"hs_token"`
	SenderLocalpart string                 `yaml:"sender_localpart"`
	Namespaces      RegistrationNamespaces `yaml:"namespaces"`
	RateLimited     bool                   `yaml:"rate_limited"`
}

// RegistrationNamespaces are the IDs the appservice is interested in.
type RegistrationNamespaces struct {
	Users   []RegistrationNamespace `yaml:"users"`
	Aliases []RegistrationNamespace `yaml:"aliases"`
	Rooms   []RegistrationNamespace `yaml:"rooms"`
}

// RegistrationNamespace is one regex of a namespace.
type RegistrationNamespace struct {
	Exclusive bool   `yaml:"exclusive"`
	Regex     string `yaml:"regex"`
}

// DefaultSenderLocalpart is the appservice's own user, @luamods:server_name.
const DefaultSenderLocalpart = "luamods"

// NewRegistration makes the registration for cfg: luamods' listen address
// as the url, fresh random tokens, and a non-exclusive namespace of every
// user of server_name (luamods acts as any local user and sees every event
// of rooms they are in, taking no user away from the homeserver).
func NewRegistration(cfg *Config) (*Registration, error) {
	if cfg.ServerName == "" {
		return nil, &ConfigError{File: cfg.Path, Path: []string{"server_name"}, Msg: "a registration needs the homeserver's server_name"}
	}
	as, err := randomToken()
	if err != nil {
		return nil, err
	}
	hs, err := randomToken()
	if err != nil {
		return nil, err
	}
	return &Registration{
		ID:              "luamods",
		URL:             "http://" + cfg.Listen,
		ASToken:         as,
		HSToken:         hs,
		SenderLocalpart: DefaultSenderLocalpart,
		Namespaces: RegistrationNamespaces{
			Users:   []RegistrationNamespace{{Exclusive: false, Regex: "@.*:" + regexp.QuoteMeta(cfg.ServerName)}},
			Aliases: []RegistrationNamespace{},
			Rooms:   []RegistrationNamespace{},
		},
	}, nil
}

// randomToken is 32 random bytes in hex.
func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("making a token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// Marshal renders the registration as the YAML file homeservers read.
func (r *Registration) Marshal() ([]byte, error) {
	body, err := yaml.Marshal(r)
	if err != nil {
		return nil, err
	}
	return append([]byte("# luamods appservice registration: give this file to the homeserver.\n# It holds both tokens; keep it private (mode 0600).\n"), body...), nil
}

// LoadRegistration reads a registration file, checking the fields luamods
// needs.
func LoadRegistration(path string) (*Registration, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the appservice registration: %w", err)
	}
	var r Registration
	if err := yaml.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("%s: not a valid appservice registration: %w", path, err)
	}
	var missing []string
	for _, f := range []struct{ name, v string }{{"as_token", r.ASToken}, {"hs_token", r.HSToken}, {"sender_localpart", r.SenderLocalpart}} {
		if strings.TrimSpace(f.v) == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s: the appservice registration has no %s", path, strings.Join(missing, ", "))
	}
	return &r, nil
}
