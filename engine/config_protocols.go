package engine

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// DefaultProtocolBody is the default body limit of the homeserver protocol
// endpoints (http_antispam, rest_auth).
const DefaultProtocolBody = 64 << 10

// ProtocolConfig is http_antispam or rest_auth: how a homeserver module
// (synapse-http-antispam, the REST password provider) reaches luamods.
type ProtocolConfig struct {
	// Authorization is the shared secret the homeserver module sends:
	// authorization, or the contents of authorization_path (trimmed). The
	// key names are the module's own.
	Authorization string
	// MaxBody bounds a request body (max_request_body; default 64 KiB):
	// larger ones are refused with 413 before anything runs.
	MaxBody int64
	// Async (http_antispam only; the module's own key and shape) lists the
	// callbacks the module fires in the background, ignoring the answer:
	// luamods runs those in every module instead of stopping at the first
	// denial, and answers 200.
	Async map[string]bool
}

// protocol parses an http_antispam or rest_auth section. A section needs
// exactly one of authorization and authorization_path; a missing section
// leaves the endpoint off.
func (p *configParser) protocol(n *yaml.Node, at []string, dir string) *ProtocolConfig {
	pc := &ProtocolConfig{MaxBody: DefaultProtocolBody}
	var secretPath string
	var sawSecret bool
	keys := []string{"authorization", "authorization_path", "max_request_body"}
	if at[len(at)-1] == "http_antispam" {
		keys = append(keys, "async")
	}
	p.fields(n, at, keys, func(key string, v *yaml.Node, kat []string) {
		switch key {
		case "authorization":
			if sawSecret {
				p.fail(v, kat, "set authorization or authorization_path, not both")
			}
			sawSecret = true
			if pc.Authorization = p.str(v, kat); pc.Authorization == "" && v.Tag == "!!str" {
				p.fail(v, kat, "the secret is empty")
			}
		case "authorization_path":
			if sawSecret {
				p.fail(v, kat, "set authorization or authorization_path, not both")
			}
			sawSecret = true
			if secretPath = p.str(v, kat); secretPath == "" {
				return
			}
			b, err := os.ReadFile(resolvePath(dir, secretPath))
			if err != nil {
				p.fail(v, kat, err.Error())
				return
			}
			pc.Authorization = strings.TrimSpace(string(b))
			if pc.Authorization == "" {
				p.fail(v, kat, "the file "+secretPath+" is empty")
			}
		case "max_request_body":
			pc.MaxBody = p.size(v, kat)
		case "async":
			pc.Async = p.asyncCallbacks(v, kat)
		}
	})
	if n.Kind == yaml.MappingNode && !sawSecret {
		p.fail(n, at, "authorization or authorization_path is required (the shared secret the homeserver module sends)")
	}
	return pc
}

// asyncCallbacks reads http_antispam.async: spam-checker callback → bool.
func (p *configParser) asyncCallbacks(n *yaml.Node, at []string) map[string]bool {
	out := map[string]bool{}
	if n.Kind != yaml.MappingNode {
		p.fail(n, at, "expected a mapping of callback names to true or false")
		return out
	}
	spam := NewCatalog().Category("spam_checker")
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		kat := append(append([]string(nil), at...), k.Value)
		if !slices.ContainsFunc(spam.Callbacks, func(c *Callback) bool { return c.Name == k.Value }) {
			p.fail(k, at, fmt.Sprintf("%q is not a spam-checker callback", k.Value))
			continue
		}
		on, err := strconv.ParseBool(v.Value)
		if v.Kind != yaml.ScalarNode || err != nil {
			p.fail(v, kat, "expected true or false")
		}
		out[k.Value] = on
	}
	return out
}

// sameSecrets reports whether a and b hold the same secrets. They may come
// from files (admin_token_file, authorization_path) whose change leaves
// the configuration's own bytes as they were: a reload must still apply it.
func sameSecrets(a, b *Config) bool {
	secret := func(p *ProtocolConfig) string {
		if p == nil {
			return ""
		}
		return p.Authorization
	}
	return a.AdminToken == b.AdminToken && secret(a.HTTPAntispam) == secret(b.HTTPAntispam) && secret(a.RestAuth) == secret(b.RestAuth)
}
