package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A Config built in Go loads like a file: defaults filled in, module paths
// relative to cfg.Path's folder, the sandbox on; Reload reloads its scripts.
func TestOptionsConfigBuiltInGo(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"m.lua": `local M = {}
function M.init(api, config)
  api.register_test_callbacks{ run = function(cmd) return config.word .. ":" .. tostring(os.execute) end }
end
return M`,
	})
	cfg := &Config{Path: filepath.Join(dir, "virtual.yaml"), ServerName: "example.com",
		Modules: []ModuleConfig{{Module: "m.lua", Config: map[string]any{"word": "one"}}}}
	ctx := context.Background()
	eng, err := New(ctx, Options{Config: cfg, Catalog: catalogWithTestCategory()})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if got, err := eng.Invoke(ctx, "test.run", "x"); err != nil || got != "one:nil" {
		t.Fatalf("got %v, %v; want one:nil (sandboxed)", got, err)
	}
	gen := eng.Current()
	m := gen.Config.Modules[0]
	if gen.Config.Listen != DefaultListen || m.Instances != 1 || m.Timeout == 0 || m.File != filepath.Join(dir, "m.lua") {
		t.Errorf("defaults not filled in: %+v %+v", gen.Config, m)
	}
	if cfg.Modules[0].File != "" {
		t.Error("New changed the caller's Config")
	}
	if err := os.WriteFile(filepath.Join(dir, "m.lua"), []byte(`local M = {}
function M.init(api, config)
  api.register_test_callbacks{ run = function(cmd) return "two" end }
end
return M`), 0o644); err != nil {
		t.Fatal(err)
	}
	if !eng.Stale() {
		t.Error("Stale missed the changed script")
	}
	if _, err := eng.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := eng.Invoke(ctx, "test.run", "x"); err != nil || got != "two" {
		t.Fatalf("after reload got %v, %v", got, err)
	}
}

func TestOptionsConfigErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := New(ctx, Options{}); !errors.Is(err, errNoConfig) {
		t.Errorf("no config: %v", err)
	}
	_, err := New(ctx, Options{Config: &Config{Modules: []ModuleConfig{{Module: "/nowhere/missing.lua"}}}})
	if err == nil || !strings.Contains(err.Error(), "modules.<item 0>.module") || !strings.Contains(err.Error(), "missing.lua not found") {
		t.Errorf("missing module: %v", err)
	}
}
