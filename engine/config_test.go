package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfigErrors(t *testing.T) {
	good := "local M = {} function M.init() end return M"
	cases := []struct {
		name   string
		config string
		files  map[string]string
		want   []string // every one must appear
	}{
		{"not a mapping item", "modules:\n  - just-a-string\n", nil,
			[]string{"Error in configuration at 'modules.<item 0>': expected a mapping", "line 2"}},
		{"module not a string", "modules:\n  - module: ok.lua\n  - module: [1, 2]\n", map[string]string{"ok.lua": good},
			[]string{"Error in configuration at 'modules.<item 1>.module': expected a string", "line 3"}},
		{"missing module key", "modules:\n  - config: {}\n", nil,
			[]string{"at 'modules.<item 0>.module': expected a string"}},
		{"every problem reported", "modules:\n  - module: 5\n  - 7\nlisten: [x]\n", nil,
			[]string{"'modules.<item 0>.module'", "'modules.<item 1>'", "'listen': expected a string"}},
		{"unknown key with suggestion", "server_nmae: x\nmodules: []\n", nil,
			[]string{`unknown key "server_nmae" (did you mean "server_name"?)`}},
		{"unknown module key", "modules:\n  - module: ok.lua\n    instnces: 2\n", map[string]string{"ok.lua": good},
			[]string{`unknown key "instnces" (did you mean "instances"?)`}},
		{"missing file", "modules:\n  - module: nothere.lua\n", nil,
			[]string{"'modules.<item 0>.module'", "nothere.lua not found"}},
		{"dotted name not found", "modules:\n  - module: a.b\n", nil,
			[]string{`module "a.b" not found`, "a/b.lua"}},
		{"bad timeout", "modules:\n  - module: ok.lua\n    timeout: soon\n", map[string]string{"ok.lua": good},
			[]string{"'modules.<item 0>.timeout'", "expected a duration"}},
		{"bad instances", "modules:\n  - module: ok.lua\n    instances: 0\n", map[string]string{"ok.lua": good},
			[]string{"'modules.<item 0>.instances'"}},
		{"bad ip range", "ip_range_allowlist: [not-an-ip]\nmodules: []\n", nil,
			[]string{"'ip_range_allowlist.<item 0>'", "not an IP range"}},
		{"bad size", "max_request_body: lots\n", nil,
			[]string{"'max_request_body'", "expected a size"}},
		{"not YAML", "modules: [\n", nil, []string{"not valid YAML"}},
		{"syntax error", "modules:\n  - module: bad.lua\n", map[string]string{"bad.lua": "local M = {}\nfunction M.init(\nreturn M"},
			[]string{"'modules.<item 0>.module'", "module 'bad.lua' does not compile", "bad.lua:3: syntax error"}},
		{"chunk raises", "modules:\n  - module: bad.lua\n", map[string]string{"bad.lua": "local M = {}\nlocal x = nil\nx.y = 1\nreturn M"},
			[]string{"Failed to load module 'bad.lua'", "bad.lua:3:"}},
		{"no module table", "modules:\n  - module: bad.lua\n", map[string]string{"bad.lua": "return 5"},
			[]string{"must return a table"}},
		{"no init", "modules:\n  - module: bad.lua\n", map[string]string{"bad.lua": "return {}"},
			[]string{"no init function"}},
		{"parse_config raises", "modules:\n  - module: bad.lua\n    config: {greeting: 5}\n",
			map[string]string{"bad.lua": "local M = {}\nfunction M.parse_config(c)\n  error('greeting must be a string')\nend\nfunction M.init() end\nreturn M"},
			[]string{"Error in configuration at 'modules.<item 0>.config':\n  Failed to parse config for module 'bad.lua':\n    ", "bad.lua:3: greeting must be a string"}},
		{"init raises", "modules:\n  - module: ok.lua\n  - module: bad.lua\n",
			map[string]string{"ok.lua": good, "bad.lua": "local M = {}\nfunction M.init(api)\n  api.nope()\nend\nreturn M"},
			[]string{"'modules.<item 1>'", "Error during startup of module 'bad.lua'", "bad.lua:3:"}},
		{"reserved path", "modules:\n  - module: bad.lua\n",
			map[string]string{"bad.lua": "local M = {}\nfunction M.init(api)\n  api.register_web_resource('/_matrix/client/v3/x', function() end)\nend\nreturn M"},
			[]string{"bad.lua:3:", `path "/_matrix/client/v3/x" is under /_matrix/client`}},
		{"path without slash", "modules:\n  - module: bad.lua\n",
			map[string]string{"bad.lua": "local M = {}\nfunction M.init(api)\n  api.register_web_resource('x', function() end)\nend\nreturn M"},
			[]string{`path "x" must start with /`}},
		{"admin prefix", "modules:\n  - module: bad.lua\n",
			map[string]string{"bad.lua": "local M = {}\nfunction M.init(api)\n  api.register_web_resource('/_luamods/v1/mine', function() end)\nend\nreturn M"},
			[]string{"is under /_luamods"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			files := map[string]string{"luamods.yaml": c.config}
			for k, v := range c.files {
				files[k] = v
			}
			_, _, err := startEngine(t, files)
			if err == nil {
				t.Fatal("loaded without an error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestConfigDefaultsAndModuleResolution(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"luamods.yaml":     "server_name: example.com\nmodule_path: [lib]\nmax_request_body: 1MiB\nmodules:\n  - module: pkg.mod\n    config: null\n  - module: local.lua\n    timeout: 250ms\n    instances: 3\n    sandbox: false\n",
		"lib/pkg/mod.lua":  "return {init = function() end}",
		"local.lua":        "return {init = function() end}",
		"admin.token":      "s3cret\n",
		"other.yaml":       "admin_token_file: admin.token\n",
		"nomodules.yaml":   "modules:\n",
		"emptyconfig.yaml": "modules:\n  - module: local.lua\n    config: {}\n",
	})
	cfg, err := LoadConfig(dir + "/luamods.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != DefaultListen || cfg.MaxRequestBody != 1<<20 || cfg.IPBlocklist != nil {
		t.Errorf("defaults: %+v", cfg)
	}
	m0, m1 := cfg.Modules[0], cfg.Modules[1]
	if m0.File != dir+"/lib/pkg/mod.lua" || m0.Instances != 1 || m0.Timeout != 5*time.Second || m0.Unsandboxed {
		t.Errorf("module 0: %+v", m0)
	}
	if cm, ok := m0.Config.(map[string]any); !ok || len(cm) != 0 {
		t.Errorf("config: null should be {}, got %#v", m0.Config)
	}
	if m1.File != dir+"/local.lua" || m1.Instances != 3 || m1.Timeout != 250*time.Millisecond || !m1.Unsandboxed {
		t.Errorf("module 1: %+v", m1)
	}
	other, err := LoadConfig(dir + "/other.yaml")
	if err != nil || other.AdminToken != "s3cret" {
		t.Errorf("admin_token_file: %v %q", err, other.AdminToken)
	}
	if c, err := LoadConfig(dir + "/nomodules.yaml"); err != nil || len(c.Modules) != 0 {
		t.Errorf("empty modules: %v", err)
	}
}

func TestInstancesHaveTheirOwnGlobals(t *testing.T) {
	eng, _, err := startEngine(t, map[string]string{
		"luamods.yaml": "modules:\n  - module: m1.lua\n    instances: 2\n",
		"m1.lua":       moduleSource(reg{"account_validity", "is_user_expired", "count = (count or 0) + 1 return count"}),
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []any
	for i := 0; i < 4; i++ {
		r, err := eng.Invoke(context.Background(), "account_validity.is_user_expired", "@a:x")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	// Round robin over two states, each counting its own calls.
	if len(eng.Current().Modules[0].States()) != 2 || got[0] != got[1] || got[2] != got[3] || got[2] != int64(2) {
		t.Fatalf("counts = %v", got)
	}
}

func TestUnknownCallbackAndArity(t *testing.T) {
	eng, _, err := startEngine(t, map[string]string{"luamods.yaml": "modules: []\n"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Invoke(context.Background(), "spam_checker.nope"); !errors.Is(err, ErrUnknownCallback) {
		t.Errorf("err = %v", err)
	}
	if _, err := eng.Invoke(context.Background(), "account_validity.is_user_expired", 1, 2); err == nil {
		t.Error("too many arguments accepted")
	}
	if res, err := eng.Invoke(context.Background(), "spam_checker.user_may_invite", "a", "b", "c"); err != nil || res != "NOT_SPAM" {
		t.Errorf("no modules: %v %v", res, err)
	}
}

// FuzzParseConfig: any bytes give a config or errors, never a panic, and
// every error is a located ConfigError.
func FuzzParseConfig(f *testing.F) {
	for _, seed := range []string{
		"modules:\n  - module: a.lua\n", "server_name: x\nlisten: [1]\n", "cache: {redis: {addr: x, db: -1}}\n",
		"modules: {a: 1}\n", "max_request_body: 10MiB\n", "- a\n- b\n", "modules:\n  - module: m\n    config: [1, {a: b}]\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input string) {
		_, err := ParseConfig("/nonexistent/luamods.yaml", []byte(input))
		if err == nil {
			return
		}
		var errs Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("%q: error %v is not Errors", input, err)
		}
		for _, e := range errs {
			var ce *ConfigError
			if !errors.As(e, &ce) {
				t.Fatalf("%q: %v is not a ConfigError", input, e)
			}
		}
	})
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1048576": 1 << 20, "512KiB": 512 << 10, "10MiB": 10 << 20, "10mib": 10 << 20, "1 GB": 1 << 30, "2k": 2048, "7B": 7} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "lots", "-1MiB", "0", "1.5MiB"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}

// TestMaxConnectionsConfig: max_connections is a whole number of at least
// 1, 10000 when unset (in a file and in a Config built in Go); anything else
// is an error at its YAML path and line.
func TestMaxConnectionsConfig(t *testing.T) {
	for _, c := range []struct {
		yaml string
		want int    // the value read, when valid
		err  string // else the error
	}{
		{"server_name: x\n", DefaultMaxConnections, ""},
		{"max_connections: 2\n", 2, ""},
		{"max_connections: 50000\n", 50000, ""},
		{"server_name: x\nmax_connections: 0\n", 0, "Error in configuration at 'max_connections': expected a whole number of at least 1 (luamods.yaml, line 2)"},
		{"max_connections: -5\n", 0, "at 'max_connections': expected a whole number of at least 1"},
		{"max_connections: lots\n", 0, "at 'max_connections': expected a whole number of at least 1"},
		{"max_connections: 1.5\n", 0, "at 'max_connections': expected a whole number of at least 1"},
		{"max_connections: [10]\n", 0, "at 'max_connections': expected a whole number of at least 1"},
		{"max_connection: 10\n", 0, `unknown key "max_connection" (did you mean "max_connections"?)`},
	} {
		cfg, err := ParseConfig("luamods.yaml", []byte(c.yaml))
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%q: %v", c.yaml, err)
		case c.err == "" && cfg.MaxConnections != c.want:
			t.Errorf("%q: max_connections %d, want %d", c.yaml, cfg.MaxConnections, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%q: error %v, want %q", c.yaml, err, c.err)
		}
	}
	built, err := completeConfig(&Config{})
	if err != nil || built.MaxConnections != DefaultMaxConnections {
		t.Errorf("a Config built in Go: max_connections %v %v, want %d", built, err, DefaultMaxConnections)
	}
}
