package engine

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"luamods/internal/logbuf"
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

// startEngine loads luamods.yaml from files.
func startEngine(t testing.TB, files map[string]string) (*Engine, *logbuf.Buffer, error) {
	t.Helper()
	dir := writeFiles(t, files)
	logs := &logbuf.Buffer{}
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
		{Name: "run", Args: []string{"cmd", "key"}, Combine: SingleValue(), OnError: Propagate},
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

// redisServer is a real redis-server on a free loopback port.
type redisServer struct {
	port int
	cmd  *exec.Cmd
}

// startRedis starts a redis-server, stopped when the test ends; it skips
// the test when none is installed (and fails it on CI).
func startRedis(t *testing.T) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server is not installed (tools/test.sh installs it)")
		}
		t.Skip("redis-server is not installed")
	}
	r := &redisServer{port: freePort(t)}
	r.start(t)
	t.Cleanup(r.stop)
	return r
}

func (r *redisServer) start(t *testing.T) {
	t.Helper()
	r.cmd = exec.Command("redis-server", "--port", fmt.Sprint(r.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Ready once it accepts connections (a generous bound for slow machines).
	addr := fmt.Sprintf("127.0.0.1:%d", r.port)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server never listened on %s", addr)
		}
	}
}

func (r *redisServer) stop() {
	if r.cmd != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		r.cmd = nil
	}
}

// freePort is a loopback port nothing listens on (now).
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
