package engine

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// writeFiles writes name → content into a new temporary folder.
func writeFiles(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// logBuffer collects log output for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startEngine loads luamods.yaml from files.
func startEngine(t testing.TB, files map[string]string) (*Engine, *logBuffer, error) {
	t.Helper()
	dir := writeFiles(t, files)
	logs := &logBuffer{}
	eng, err := New(context.Background(), Options{
		ConfigPath: filepath.Join(dir, "luamods.yaml"),
		Catalog:    catalogWithTestCategory(),
		Logger:     slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err == nil {
		t.Cleanup(eng.Close)
	}
	return eng, logs, err
}

// catalogWithTestCategory is Synapse's catalog plus a host-defined
// category "test" whose callback run(cmd, key) returns the single module's
// result: the mechanism a host uses for its own hook points.
func catalogWithTestCategory() *Catalog {
	c := NewCatalog()
	if err := c.Add(&Category{Name: "test", Callbacks: []*Callback{
		{Name: "run", Args: []string{"cmd", "key"}, Combine: singleValue, OnError: Propagate},
	}}); err != nil {
		panic(err)
	}
	return c
}

// reg is one callback a test module registers: a function body.
type reg struct{ category, name, body string }

// moduleSource is a module registering regs in init.
func moduleSource(regs ...reg) string {
	byCat := map[string][]reg{}
	var cats []string
	for _, r := range regs {
		if _, ok := byCat[r.category]; !ok {
			cats = append(cats, r.category)
		}
		byCat[r.category] = append(byCat[r.category], r)
	}
	sort.Strings(cats)
	var b strings.Builder
	b.WriteString("local M = {}\nfunction M.init(api, config)\n")
	for _, c := range cats {
		fmt.Fprintf(&b, "  api.register_%s_callbacks{\n", c)
		for _, r := range byCat[c] {
			fmt.Fprintf(&b, "    %s = function(...) %s end,\n", r.name, r.body)
		}
		b.WriteString("  }\n")
	}
	b.WriteString("end\nreturn M\n")
	return b.String()
}

// modulesConfig lists m1.lua … mN.lua under modules:.
func modulesConfig(n int) string {
	var b strings.Builder
	b.WriteString("server_name: example.com\nmodules:\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "  - module: m%d.lua\n", i)
	}
	return b.String()
}

func calls(e *Engine, callback, module string) int {
	return int(testutil.ToFloat64(e.metrics.CallbackCalls.WithLabelValues(callback, module)))
}
