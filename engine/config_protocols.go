package engine

import (
	"os"
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
}

// protocol parses an http_antispam or rest_auth section. A section needs
// exactly one of authorization and authorization_path; a missing section
// leaves the endpoint off.
func (p *configParser) protocol(n *yaml.Node, at []string, dir string) *ProtocolConfig {
	pc := &ProtocolConfig{MaxBody: DefaultProtocolBody}
	var secretPath string
	var sawSecret bool
	p.fields(n, at, []string{"authorization", "authorization_path", "max_request_body"}, func(key string, v *yaml.Node, kat []string) {
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
		}
	})
	if n.Kind == yaml.MappingNode && !sawSecret {
		p.fail(n, at, "authorization or authorization_path is required (the shared secret the homeserver module sends)")
	}
	return pc
}
