package engine

import (
	"net/url"

	"gopkg.in/yaml.v3"
)

// HomeserverConfig is homeserver: the Matrix homeserver luamods sits beside
// (docs/matrix.md). Paths are resolved against the config file's folder.
type HomeserverConfig struct {
	URL            string // url: the homeserver's client-server API, e.g. http://127.0.0.1:8008
	Registration   string // registration: the appservice registration file (as_token, hs_token)
	AdminTokenPath string // admin_token_path: a file holding a server admin's access token; "": none
}

// homeserver parses homeserver: {url, registration, admin_token_path}.
func (p *configParser) homeserver(n *yaml.Node, at []string, dir string) *HomeserverConfig {
	if n.Tag == "!!null" {
		return nil
	}
	hs := &HomeserverConfig{}
	p.fields(n, at, []string{"url", "registration", "admin_token_path"}, func(key string, v *yaml.Node, kat []string) {
		switch key {
		case "url":
			hs.URL = p.str(v, kat)
			if u, err := url.Parse(hs.URL); hs.URL != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
				p.fail(v, kat, "expected an http:// or https:// URL such as http://127.0.0.1:8008")
			}
		case "registration":
			if s := p.str(v, kat); s != "" {
				hs.Registration = resolvePath(dir, s)
			}
		case "admin_token_path":
			if s := p.str(v, kat); s != "" {
				hs.AdminTokenPath = resolvePath(dir, s)
			}
		}
	})
	if n.Kind != yaml.MappingNode {
		return nil
	}
	if hs.URL == "" {
		p.fail(n, append(at, "url"), "expected the homeserver's URL, such as http://127.0.0.1:8008")
	}
	if hs.Registration == "" {
		p.fail(n, append(at, "registration"), "expected the path of the appservice registration file (write one with luamods registration)")
	}
	return hs
}

// optionalStr reads a string that may be null ("").
func (p *configParser) optionalStr(n *yaml.Node, at []string) string {
	if n.Tag == "!!null" {
		return ""
	}
	return p.str(n, at)
}

// email parses email: {app_name}, the part of Synapse's email settings
// modules see (api.email_app_name).
func (p *configParser) email(n *yaml.Node, at []string) string {
	var app string
	p.fields(n, at, []string{"app_name"}, func(_ string, v *yaml.Node, kat []string) {
		app = p.str(v, kat)
	})
	return app
}
