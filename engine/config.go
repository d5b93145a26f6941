package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"luamods/luaapi"
	"luamods/storage"
)

// Config is luamods.yaml (design §2). The zero value of each optional field
// means its default.
type Config struct {
	Path           string       // the file it was read from; module paths are relative to its folder
	ServerName     string       // server_name → api.server_name
	PublicBaseURL  string       // public_baseurl → api.public_baseurl
	WorkerName     string       // worker_name → api.worker_name; "" (nil in Lua) on the main process
	Listen         string       // listen; default 127.0.0.1:8008
	AdminToken     string       // admin_token, or read from admin_token_file
	ModulePath     []string     // module_path: folders searched for dotted module names; default the config's folder
	IPBlocklist    []string     // ip_range_blocklist; default luaapi.DefaultBlocklist
	IPAllowlist    []string     // ip_range_allowlist
	MaxRequestBody int64        // max_request_body; default 10 MiB
	Redis          *RedisConfig // redis (or the deprecated cache.redis): invalidations fan out through Redis
	LogLevel       string       // log_level: debug, info, warn, error; default info
	LogFormat      string       // log_format: text (default) or json (slog's JSON handler)

	MaxCallMemory int64          // max_call_memory: allocation budget of one call's builtins; default luaapi.DefaultMaxCallMemory
	MemoryLimit   int64          // memory_limit: the process's soft memory limit (luamods serve); default a quarter of the machine's memory
	Limits        luaapi.Limits  // max_timers, min_timer_interval, max_queued_calls: every module's, unless it sets its own
	Modules       []ModuleConfig // modules, in order

	// MaxRequestJSONNodes (max_request_json_nodes) bounds the values and
	// keys of a JSON request body; default luaapi.DefaultMaxJSONNodes.
	MaxRequestJSONNodes int

	// MaxConnections (max_connections) is how many client connections
	// luamods serve holds open at once; default DefaultMaxConnections.
	MaxConnections int

	// Module persistence (docs/storage.md).
	Database     storage.Options       // database: SQLite next to the config by default
	DefaultDB    bool                  // no database: section was given
	RedisServer  *storage.RedisOptions // redis: with enabled: true
	StoreBackend string                // store.backend: database (default) or redis
	Warnings     []string              // deprecated settings in use, logged at load

	// The Matrix homeserver luamods sits beside (docs/matrix.md).
	Homeserver   *HomeserverConfig // homeserver: its APIs behind the api methods; nil: none
	EmailAppName string            // email.app_name → api.email_app_name; default server_name

	// The homeserver protocols (docs/synapse.md); nil means off.
	HTTPAntispam *ProtocolConfig // http_antispam: synapse-http-antispam's endpoint
	RestAuth     *ProtocolConfig // rest_auth: the REST password provider's endpoint

	raw []byte // the file's bytes, for change detection
}

// RedisConfig is cache.redis.
type RedisConfig struct {
	Addr     string
	Password string
	DB       int
	Channel  string // default "luamods:invalidate"
}

// ModuleConfig is one entry of modules:.
type ModuleConfig struct {
	Module    string        // module: a .lua path or a dotted name
	Config    any           // config: passed to parse_config/init; missing or empty: {}
	Instances int           // instances: Lua states; default 1
	Timeout   time.Duration // timeout: deadline of each call; default 5 s
	// Unsandboxed is sandbox: false (the zero value keeps the sandbox on,
	// also for a Config built in Go).
	Unsandboxed bool
	// BackgroundTimeout (background_timeout) is the deadline of each
	// background call: looping and delayed calls, run_as_background_process;
	// zero: luaapi.DefaultBackgroundTimeout (10 min).
	BackgroundTimeout time.Duration
	// Limits are max_timers, min_timer_interval and max_queued_calls: the
	// entry's own, else the top level's (after loading); zero: luaapi's defaults.
	Limits luaapi.Limits
	File   string // the resolved script path
	Item   int    // index in modules:
	Line   int    // line of the entry in the config file
}

// DefaultListen is where luamods serve listens when the config says nothing.
const DefaultListen = "127.0.0.1:8008"

// DefaultMaxRequestBody is max_request_body's default.
const DefaultMaxRequestBody = 10 << 20

// DefaultMaxConnections is max_connections' default.
const DefaultMaxConnections = 10000

// ConfigError is one problem in the configuration, located by its YAML
// path, in Synapse's shape.
type ConfigError struct {
	File   string
	Line   int
	Path   []string // e.g. modules, <item 1>, module
	Msg    string
	Causes []string // further lines, each indented one more level
}

// Error renders the problem in Synapse's shape, with the file and line.
func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("Error in configuration")
	if len(e.Path) > 0 {
		fmt.Fprintf(&b, " at '%s'", strings.Join(e.Path, "."))
	}
	where := ""
	if e.File != "" && e.Line > 0 {
		where = fmt.Sprintf(" (%s, line %d)", e.File, e.Line)
	}
	if len(e.Causes) == 0 {
		b.WriteString(": " + e.Msg + where)
		return b.String()
	}
	// With causes, Synapse's multi-line shape: each cause one level deeper.
	b.WriteString(":\n  " + e.Msg + ":")
	for i, c := range e.Causes {
		indent := strings.Repeat("  ", i+2)
		b.WriteString("\n" + indent + strings.ReplaceAll(c, "\n", "\n"+indent))
	}
	if where != "" {
		b.WriteString("\n " + where)
	}
	return b.String()
}

// Errors is every problem found while loading, in order.
type Errors []error

// Error is every problem, one after the other.
func (e Errors) Error() string {
	parts := make([]string, len(e))
	for i, err := range e {
		parts[i] = err.Error()
	}
	return strings.Join(parts, "\n")
}

// Unwrap gives errors.Is and errors.As every problem.
func (e Errors) Unwrap() []error { return e }

func itemName(i int) string { return "<item " + strconv.Itoa(i) + ">" }

var topLevelKeys = []string{
	"server_name", "public_baseurl", "listen", "admin_token", "admin_token_file", "module_path",
	"ip_range_blocklist", "ip_range_allowlist", "max_request_body", "cache", "log_level", "log_format", "modules",
	"http_antispam", "rest_auth", "worker_name",
	"homeserver", "email",
	"database", "redis", "store",

	"max_call_memory",
	"memory_limit",
	"max_timers", "min_timer_interval", "max_queued_calls", // limitKeys
	"max_request_json_nodes",
	"max_connections",
}

// LoadConfig reads and validates the configuration file at path. It reports
// every problem it finds (as Errors of *ConfigError), not only the first.
func LoadConfig(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading configuration: %w", err)
	}
	return ParseConfig(path, raw)
}

// ParseConfig validates configuration bytes read from path.
func ParseConfig(path string, raw []byte) (*Config, error) {
	cfg := &Config{Path: path, raw: raw, Listen: DefaultListen, MaxRequestBody: DefaultMaxRequestBody, MaxRequestJSONNodes: luaapi.DefaultMaxJSONNodes,
		MaxConnections: DefaultMaxConnections}
	p := &configParser{file: path}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, Errors{&ConfigError{File: path, Msg: "not valid YAML: " + err.Error()}}
	}
	if len(doc.Content) == 0 {
		return nil, Errors{&ConfigError{File: path, Msg: "the file is empty"}}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		p.fail(root, nil, "expected a mapping")
		return nil, p.errs
	}
	dir := filepath.Dir(path)
	var tokenFile string
	p.fields(root, nil, topLevelKeys, func(key string, v *yaml.Node, at []string) {
		switch key {
		case "server_name":
			cfg.ServerName = p.str(v, at)
		case "public_baseurl":
			cfg.PublicBaseURL = p.str(v, at)
		case "worker_name":
			cfg.WorkerName = p.optionalStr(v, at) // null: the main process
		case "listen":
			cfg.Listen = p.str(v, at)
		case "admin_token":
			cfg.AdminToken = p.str(v, at)
		case "admin_token_file":
			tokenFile = p.str(v, at)
		case "module_path":
			for _, d := range p.strList(v, at) {
				cfg.ModulePath = append(cfg.ModulePath, resolvePath(dir, d))
			}
		case "ip_range_blocklist":
			cfg.IPBlocklist = p.ranges(v, at)
		case "ip_range_allowlist":
			cfg.IPAllowlist = p.ranges(v, at)
		case "max_request_body":
			cfg.MaxRequestBody = p.size(v, at)
		case "max_call_memory":
			cfg.MaxCallMemory = p.size(v, at)
		case "max_request_json_nodes":
			cfg.MaxRequestJSONNodes = p.intIn(v, at, 1, 1<<30)
		case "max_connections":
			cfg.MaxConnections = p.count(v, at)
		case "memory_limit":
			cfg.MemoryLimit = p.size(v, at)
		case "max_timers", "min_timer_interval", "max_queued_calls":
			p.limit(key, v, at, &cfg.Limits)
		case "log_level":
			cfg.LogLevel = p.str(v, at)
			switch cfg.LogLevel {
			case "debug", "info", "warn", "error":
			default:
				p.fail(v, at, "expected one of debug, info, warn, error")
			}
		case "log_format":
			cfg.LogFormat = p.str(v, at)
			if cfg.LogFormat != "text" && cfg.LogFormat != "json" {
				p.fail(v, at, "expected text or json")
			}
		case "cache":
			cfg.Redis = p.cache(v, at)
			if cfg.Redis != nil {
				cfg.Warnings = append(cfg.Warnings, "cache.redis is deprecated: use the top-level redis: {enabled: true, host:, port:} (Synapse's shape)")
			}
		case "database":
			p.database(cfg, v, at, dir)
		case "redis":
			cfg.RedisServer = p.redis(v, at, dir)
		case "store":
			p.store(cfg, v, at)
		case "modules":
			cfg.Modules = p.modules(v, at)
		case "http_antispam":
			cfg.HTTPAntispam = p.protocol(v, at, dir)
		case "rest_auth":
			cfg.RestAuth = p.protocol(v, at, dir)
		case "homeserver":
			cfg.Homeserver = p.homeserver(v, at, dir)
		case "email":
			cfg.EmailAppName = p.email(v, at)
		}
	})
	if tokenFile != "" {
		b, err := os.ReadFile(resolvePath(dir, tokenFile))
		if err != nil {
			p.errs = append(p.errs, &ConfigError{File: path, Path: []string{"admin_token_file"}, Msg: err.Error()})
		} else {
			cfg.AdminToken = strings.TrimSpace(string(b))
		}
	}
	if len(cfg.ModulePath) == 0 {
		cfg.ModulePath = []string{dir}
	}
	p.storageDefaults(cfg, root, dir)
	p.errs = append(p.errs, resolveModules(cfg)...)
	if len(p.errs) > 0 {
		return nil, p.errs
	}
	return cfg, nil
}

type configParser struct {
	file string
	errs Errors
}

// fields calls set for each key of the mapping n that is in known, with
// the key's path; other keys are errors with a "did you mean".
func (p *configParser) fields(n *yaml.Node, at []string, known []string, set func(key string, v *yaml.Node, at []string)) {
	if n.Kind != yaml.MappingNode {
		p.fail(n, at, "expected a mapping")
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !slices.Contains(known, k.Value) {
			msg := fmt.Sprintf("unknown key %q", k.Value)
			if s := suggest(k.Value, known); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			} else {
				msg += " (expected " + strings.Join(known, ", ") + ")"
			}
			p.fail(k, at, msg)
			continue
		}
		set(k.Value, v, append(append([]string(nil), at...), k.Value))
	}
}

func (p *configParser) fail(n *yaml.Node, at []string, msg string) {
	p.errs = append(p.errs, &ConfigError{File: p.file, Line: n.Line, Path: append([]string(nil), at...), Msg: msg})
}

func (p *configParser) str(n *yaml.Node, at []string) string {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		p.fail(n, at, "expected a string")
		return ""
	}
	return n.Value
}

func (p *configParser) strList(n *yaml.Node, at []string) []string {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		return []string{n.Value}
	}
	if n.Kind != yaml.SequenceNode {
		p.fail(n, at, "expected a list of strings")
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for i, e := range n.Content {
		out = append(out, p.str(e, append(at, itemName(i))))
	}
	return out
}

func (p *configParser) ranges(n *yaml.Node, at []string) []string {
	list := p.strList(n, at)
	for i, r := range list {
		if _, err := luaapi.ParsePrefixes([]string{r}); err != nil {
			p.fail(n.Content[i], append(at, itemName(i)), err.Error())
		}
	}
	if list == nil {
		list = []string{}
	}
	return list
}

func (p *configParser) size(n *yaml.Node, at []string) int64 {
	v, err := parseSize(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		p.fail(n, at, "expected a size such as 10MiB, 512KiB or 1048576")
		return 0
	}
	return v
}

// parseSize reads "1048576", "512KiB", "10MiB", "1GiB" (also K/KB/M/MB/G/GB,
// as powers of 1024; any case).
func parseSize(s string) (int64, error) {
	s = strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GIB", 1 << 30}, {"GB", 1 << 30}, {"G", 1 << 30}, {"MIB", 1 << 20}, {"MB", 1 << 20}, {"M", 1 << 20}, {"KIB", 1 << 10}, {"KB", 1 << 10}, {"K", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, errors.New("bad size")
	}
	return n * mult, nil
}

func (p *configParser) duration(n *yaml.Node, at []string) time.Duration {
	if n.Kind == yaml.ScalarNode {
		if d, err := time.ParseDuration(n.Value); err == nil && d > 0 {
			return d
		}
		if f, err := strconv.ParseFloat(n.Value, 64); err == nil && f > 0 {
			return time.Duration(f * float64(time.Second))
		}
	}
	p.fail(n, at, "expected a duration such as 5s or 250ms")
	return 0
}

func (p *configParser) cache(n *yaml.Node, at []string) *RedisConfig {
	var rc *RedisConfig
	p.fields(n, at, []string{"redis"}, func(_ string, v *yaml.Node, rat []string) {
		rc = &RedisConfig{Channel: "luamods:invalidate"}
		p.fields(v, rat, []string{"addr", "password", "db", "channel"}, func(key string, vv *yaml.Node, kat []string) {
			switch key {
			case "addr":
				rc.Addr = p.str(vv, kat)
			case "password":
				rc.Password = p.str(vv, kat)
			case "channel":
				rc.Channel = p.str(vv, kat)
			case "db":
				db, err := strconv.Atoi(vv.Value)
				if vv.Kind != yaml.ScalarNode || err != nil || db < 0 {
					p.fail(vv, kat, "expected a database number")
				}
				rc.DB = db
			}
		})
		if rc.Addr == "" {
			p.fail(v, rat, "addr is required")
		}
	})
	return rc
}

func (p *configParser) modules(n *yaml.Node, at []string) []ModuleConfig {
	if n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.fail(n, at, "expected a list")
		return nil
	}
	out := make([]ModuleConfig, 0, len(n.Content))
	for i, item := range n.Content {
		iat := []string{"modules", itemName(i)}
		m := ModuleConfig{Instances: 1, Timeout: luaapi.DefaultTimeout, Item: i, Line: item.Line, Config: map[string]any{}}
		if item.Kind != yaml.MappingNode {
			p.fail(item, iat, "expected a mapping")
			out = append(out, m)
			continue
		}
		seenModule := false
		keys := append([]string{"module", "config", "instances", "timeout", "background_timeout", "sandbox"}, limitKeys...)
		p.fields(item, iat, keys, func(key string, v *yaml.Node, kat []string) {
			switch key {
			case "max_timers", "min_timer_interval", "max_queued_calls":
				p.limit(key, v, kat, &m.Limits)
			case "module":
				seenModule = true
				m.Module = p.str(v, kat)
			case "config":
				m.Config = p.moduleConfig(v, kat)
			case "instances":
				n, err := strconv.Atoi(v.Value)
				if v.Kind != yaml.ScalarNode || err != nil || n < 1 || n > 256 {
					p.fail(v, kat, "expected a whole number from 1 to 256")
				}
				m.Instances = n
			case "timeout":
				m.Timeout = p.duration(v, kat)
			case "background_timeout":
				m.BackgroundTimeout = p.duration(v, kat)
			case "sandbox":
				b, err := strconv.ParseBool(v.Value)
				if v.Kind != yaml.ScalarNode || err != nil {
					p.fail(v, kat, "expected true or false")
				}
				m.Unsandboxed = !b
			}
		})
		if !seenModule {
			p.fail(item, append(iat, "module"), "expected a string")
		}
		out = append(out, m)
	}
	return out
}

// moduleConfig decodes a module's config: missing or falsy becomes {} (as
// Synapse does); anything else passes through.
func (p *configParser) moduleConfig(n *yaml.Node, at []string) any {
	var v any
	if err := n.Decode(&v); err != nil {
		p.fail(n, at, err.Error())
		return map[string]any{}
	}
	v = normalizeYAML(v)
	switch x := v.(type) {
	case nil:
		return map[string]any{}
	case bool:
		if !x {
			return map[string]any{}
		}
	case string:
		if x == "" {
			return map[string]any{}
		}
	case int:
		if x == 0 {
			return map[string]any{}
		}
	case []any:
		if len(x) == 0 {
			return map[string]any{}
		}
	}
	return v
}

// normalizeYAML turns map[any]any (non-string keys) into map[string]any.
func normalizeYAML(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalizeYAML(e)
		}
		return x
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = normalizeYAML(e)
		}
		return out
	case []any:
		for i, e := range x {
			x[i] = normalizeYAML(e)
		}
		return x
	}
	return v
}

func resolvePath(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// resolveModule finds a module's script: a path ending in .lua relative to
// the config's folder, or a dotted name a.b → a/b.lua under module_path.
func resolveModule(dir string, modulePath []string, name string) (string, error) {
	if strings.HasSuffix(name, ".lua") {
		file := resolvePath(dir, name)
		if _, err := os.Stat(file); err != nil {
			return "", fmt.Errorf("module file %s not found", file)
		}
		return file, nil
	}
	rel := filepath.FromSlash(strings.ReplaceAll(name, ".", "/")) + ".lua"
	var tried []string
	for _, d := range modulePath {
		file := filepath.Join(d, rel)
		if _, err := os.Stat(file); err == nil {
			return file, nil
		}
		tried = append(tried, file)
	}
	return "", fmt.Errorf("module %q not found (tried %s)", name, strings.Join(tried, ", "))
}

// suggest returns the candidate closest to s, if it is close enough.
// Suggest returns the candidate closest to s (a likely typo of it), or "".
func Suggest(s string, candidates []string) string { return suggest(s, candidates) }

func suggest(s string, candidates []string) string {
	best, bestDist := "", 4
	sorted := append([]string(nil), candidates...)
	sort.Strings(sorted)
	for _, c := range sorted {
		if d := editDistance(s, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
