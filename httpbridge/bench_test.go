package httpbridge

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"luamods/engine"
)

func benchServer(b *testing.B) *echo.Echo {
	dir := b.TempDir()
	os.WriteFile(filepath.Join(dir, "luamods.yaml"), []byte("modules:\n  - module: hello.lua\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "hello.lua"), []byte(`local M = {}
function M.init(api)
  api.register_web_resource("/_synapse/client/hello", function(request)
    return { status = 200, json = { message = "hello, " .. (request.query.name or "world") } }
  end)
end
return M`), 0o644)
	eng, err := engine.New(context.Background(), engine.Options{ConfigPath: filepath.Join(dir, "luamods.yaml"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(eng.Close)
	e := echo.New()
	e.GET("/native/hello", func(c echo.Context) error {
		name := c.QueryParam("name")
		if name == "" {
			name = "world"
		}
		return c.JSON(http.StatusOK, map[string]any{"message": "hello, " + name})
	})
	New(eng).Mount(e)
	return e
}

// BenchmarkRoute serves one request through echo without a socket: the Lua
// route (request table, handler, response conversion, metrics) against the
// same route written in Go. Each request has a context that can be
// cancelled, as net/http gives every request it serves.
func BenchmarkRoute(b *testing.B) {
	e := benchServer(b)
	for _, path := range []string{"/_synapse/client/hello?name=bench", "/native/hello?name=bench"} {
		name := "lua"
		if strings.HasPrefix(path, "/native") {
			name = "native"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				ctx, cancel := context.WithCancel(context.Background())
				e.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, "GET", path, nil))
				cancel()
				if rec.Code != 200 {
					b.Fatal(rec.Code, rec.Body.String())
				}
			}
		})
	}
}

// BenchmarkRealisticRoute serves tools/bench/compare.sh's realistic route
// (tools/bench/realistic.lua, a 2 KB JSON POST) through echo without a
// socket; compare.sh measures it against its native twin over loopback.
func BenchmarkRealisticRoute(b *testing.B) {
	module, err := filepath.Abs("../tools/bench/realistic.lua")
	if err != nil {
		b.Fatal(err)
	}
	body, err := os.ReadFile("../tools/bench/realistic.json")
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	os.WriteFile(filepath.Join(dir, "luamods.yaml"), []byte("modules:\n  - module: "+module+"\n"), 0o644)
	eng, err := engine.New(context.Background(), engine.Options{ConfigPath: filepath.Join(dir, "luamods.yaml"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(eng.Close)
	e := echo.New()
	New(eng).Mount(e)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/bench/realistic", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		e.ServeHTTP(rec, req)
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"words":`) {
			b.Fatal(rec.Code, rec.Body.String())
		}
	}
}
