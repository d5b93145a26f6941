package modtest

import (
	"fmt"
	"sort"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"

	"luamods/engine"
)

// DefaultServerName is the server_name of a module loaded by luamods.load
// without one.
const DefaultServerName = "example.com"

// loadOptions are the options of luamods.load (all) and
// luamods.load_config (the server-wide ones, overriding the file's).
var loadOptions = map[string]string{
	"server_name":        "string",
	"public_baseurl":     "string",
	"worker_name":        "string",
	"instances":          "number",
	"timeout":            "number",
	"background_timeout": "number",
	"sandbox":            "boolean",
}

// serverOptions are the options luamods.load_config takes.
var serverOptions = []string{"public_baseurl", "server_name", "worker_name"}

// readOptions reads the options table at position at, refusing unknown
// names (with the known ones listed) and values of the wrong type.
func readOptions(L *lua.LState, at int, what string, known []string) (map[string]lua.LValue, error) {
	opts := map[string]lua.LValue{}
	switch t := L.Get(at).(type) {
	case *lua.LNilType:
		return opts, nil
	case *lua.LTable:
		var err error
		t.ForEach(func(k, v lua.LValue) {
			if err != nil {
				return
			}
			name, ok := k.(lua.LString)
			if !ok || !contains(known, string(name)) {
				msg := fmt.Sprintf("%s: unknown option %s", what, lua.LVAsString(k))
				if ok {
					msg = fmt.Sprintf("%s: unknown option %q", what, string(name))
					if s := engine.Suggest(string(name), known); s != "" {
						msg += fmt.Sprintf(" (did you mean %q?)", s)
					}
				}
				err = fmt.Errorf("%s; the options are %s", msg, strings.Join(known, ", "))
				return
			}
			if want := loadOptions[string(name)]; v.Type().String() != want {
				err = fmt.Errorf("%s: option %s must be a %s, not a %s", what, name, want, v.Type())
				return
			}
			opts[string(name)] = v
		})
		return opts, err
	default:
		return nil, fmt.Errorf("%s: the options must be a table, not a %s", what, t.Type())
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// moduleOptions lists the options luamods.load takes.
func moduleOptions() []string {
	names := make([]string, 0, len(loadOptions))
	for name := range loadOptions {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// applyServer sets the server-wide options on cfg. public_baseurl, when
// not given, is https://<server_name>/ for luamods.load and the file's for
// luamods.load_config.
func applyServer(cfg *engine.Config, opts map[string]lua.LValue) {
	if v, ok := opts["server_name"]; ok {
		cfg.ServerName = lua.LVAsString(v)
	}
	if v, ok := opts["public_baseurl"]; ok {
		cfg.PublicBaseURL = lua.LVAsString(v)
	}
	if v, ok := opts["worker_name"]; ok {
		cfg.WorkerName = lua.LVAsString(v)
	}
}

// applyModule sets the per-module options on mc.
func applyModule(mc *engine.ModuleConfig, opts map[string]lua.LValue) error {
	seconds := func(name string) (time.Duration, error) {
		n := float64(opts[name].(lua.LNumber))
		if n <= 0 {
			return 0, fmt.Errorf("luamods.load: option %s must be a number of seconds above 0", name)
		}
		return time.Duration(n * float64(time.Second)), nil
	}
	var err error
	if _, ok := opts["instances"]; ok {
		mc.Instances = int(opts["instances"].(lua.LNumber))
		if mc.Instances < 1 || mc.Instances > 256 {
			return fmt.Errorf("luamods.load: option instances must be from 1 to 256")
		}
	}
	if _, ok := opts["timeout"]; ok {
		if mc.Timeout, err = seconds("timeout"); err != nil {
			return err
		}
	}
	if _, ok := opts["background_timeout"]; ok {
		if mc.BackgroundTimeout, err = seconds("background_timeout"); err != nil {
			return err
		}
	}
	if v, ok := opts["sandbox"]; ok {
		mc.Unsandboxed = v == lua.LFalse
	}
	return nil
}
