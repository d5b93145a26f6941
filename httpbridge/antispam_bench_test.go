package httpbridge

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"luamods/engine"
)

// BenchmarkAntispam serves one user_may_invite end to end through echo
// (without a socket): as synapse-http-antispam sends it, and as the same
// callback through the invoke API. The difference is the protocol's cost.
func BenchmarkAntispam(b *testing.B) {
	dir := b.TempDir()
	os.WriteFile(filepath.Join(dir, "luamods.yaml"), []byte("admin_token: admin\nhttp_antispam: {authorization: spam}\nmodules:\n  - module: spam.lua\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "spam.lua"), []byte(`local M = {}
function M.init(api)
  api.register_spam_checker_callbacks{ user_may_invite = function(inviter, invitee, room_id)
    if inviter:find(":spam.example", 1, true) then return api.errors.FORBIDDEN end
    return api.NOT_SPAM
  end }
end
return M`), 0o644)
	eng, err := engine.New(context.Background(), engine.Options{ConfigPath: filepath.Join(dir, "luamods.yaml"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(eng.Close)
	e := echo.New()
	New(eng).Mount(e)
	for _, c := range []struct{ name, path, token, body string }{
		{"http_antispam", "/_luamods/v1/http_antispam/user_may_invite", "spam", `{"inviter":"@a:example.com","invitee":"@b:example.com","room_id":"!r:example.com"}`},
		{"invoke", "/_luamods/v1/invoke/spam_checker/user_may_invite", "admin", `["@a:example.com","@b:example.com","!r:example.com"]`},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest("POST", c.path, strings.NewReader(c.body))
				req.Header.Set("Authorization", "Bearer "+c.token)
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				e.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatal(rec.Code, rec.Body.String())
				}
			}
		})
	}
}
