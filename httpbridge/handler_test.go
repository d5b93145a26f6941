package httpbridge

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"luamods/engine"
)

// The bridge is an http.Handler too: a net/http server (or chi) mounts the
// module routes with the same answers as the echo mount.
func TestNetHTTPHandler(t *testing.T) {
	dir := t.TempDir()
	for name, content := range routesConfig() {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	eng, err := engine.New(context.Background(), engine.Options{ConfigPath: filepath.Join(dir, "luamods.yaml")})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	mux := http.NewServeMux()
	mux.Handle("/_synapse/client/", New(eng))
	mux.HandleFunc("/native", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("native")) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, c := range []struct {
		name, method, path, body string
		status                   int
		want                     string
	}{
		{"route", "POST", "/_synapse/client/echo/sub?q=1&q=2", `{"a":1}`, 200, `"subpath":"/sub"`},
		{"client address", "GET", "/_synapse/client/echo", "", 200, `"remote":true`},
		{"error table", "GET", "/_synapse/client/errors/table", "", 429, `"errcode":"M_LIMIT_EXCEEDED"`},
		{"plain error", "GET", "/_synapse/client/errors/plain", "", 500, `{"errcode":"M_UNKNOWN","error":"Internal server error"}`},
		{"405", "DELETE", "/_synapse/client/methods", "", 405, "Method not allowed"},
		{"413", "POST", "/_synapse/client/echo", strings.Repeat("x", 2048), 413, "M_TOO_LARGE"},
		{"no module route", "GET", "/_synapse/client/none", "", 404, "M_UNRECOGNIZED"},
		{"the server's own route", "GET", "/native", "", 200, "native"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, h, body := do(t, c.method, srv.URL+c.path, c.body)
			if status != c.status || !strings.Contains(body, c.want) {
				t.Fatalf("%s %s = %d %s, want %d containing %s", c.method, c.path, status, body, c.status, c.want)
			}
			if c.name != "the server's own route" && h.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id")
			}
			if c.name == "405" && h.Get("Allow") != "GET, POST" {
				t.Errorf("Allow = %q", h.Get("Allow"))
			}
		})
	}
}
