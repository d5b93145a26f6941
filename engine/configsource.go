package engine

import (
	"errors"
	"path/filepath"
	"slices"

	"luamods/luaapi"
)

// completeConfig returns a copy of a Config built in Go with the defaults
// ParseConfig gives a file (listen, max_request_body, max_request_json_nodes,
// max_connections, module_path, and per module instances, timeout and
// config) and every module's script resolved. Module paths are relative to the folder of cfg.Path, the
// working directory when cfg.Path is empty.
func completeConfig(cfg *Config) (*Config, error) {
	c := *cfg
	c.Modules = slices.Clone(cfg.Modules)
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.MaxRequestBody == 0 {
		c.MaxRequestBody = DefaultMaxRequestBody
	}
	if c.MaxRequestJSONNodes == 0 {
		c.MaxRequestJSONNodes = luaapi.DefaultMaxJSONNodes
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	if len(c.ModulePath) == 0 {
		c.ModulePath = []string{filepath.Dir(c.Path)}
	}
	for i := range c.Modules {
		m := &c.Modules[i]
		m.Item = i
		if m.Instances == 0 {
			m.Instances = 1
		}
		if m.Timeout == 0 {
			m.Timeout = luaapi.DefaultTimeout
		}
		if m.Config == nil {
			m.Config = map[string]any{}
		}
	}
	storageDefaults(&c, filepath.Dir(c.Path))
	if c.StoreBackend == "redis" && c.RedisServer == nil {
		return nil, Errors{&ConfigError{File: c.Path, Path: []string{"store", "backend"}, Msg: "the redis backend needs redis: {enabled: true, host: ..., port: ...}"}}
	}
	if errs := resolveModules(&c); len(errs) > 0 {
		return nil, errs
	}
	return &c, nil
}

// resolveModules finds the script of every module that has none yet,
// returning one *ConfigError per module it cannot find, and gives each
// module the top-level limits it does not set itself.
func resolveModules(cfg *Config) Errors {
	var errs Errors
	dir := filepath.Dir(cfg.Path)
	for i := range cfg.Modules {
		m := &cfg.Modules[i]
		m.Limits = m.Limits.Or(cfg.Limits)
		if m.Module == "" || m.File != "" {
			continue
		}
		file, err := resolveModule(dir, cfg.ModulePath, m.Module)
		if err != nil {
			errs = append(errs, &ConfigError{File: cfg.Path, Line: m.Line, Path: []string{"modules", itemName(i), "module"}, Msg: err.Error()})
			continue
		}
		m.File = file
	}
	return errs
}

// errNoConfig is New without a configuration.
var errNoConfig = errors.New("engine: Options need a Config or a ConfigPath")

// loadConfig is the configuration of the next generation: ConfigPath read
// again when there is one, else the Config the engine was given.
func (e *Engine) loadConfig() (*Config, error) {
	if e.opts.ConfigPath != "" {
		return LoadConfig(e.opts.ConfigPath)
	}
	if e.opts.Config != nil {
		return completeConfig(e.opts.Config)
	}
	return nil, errNoConfig
}
