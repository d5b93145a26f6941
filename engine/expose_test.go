package engine

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// directory is a Go value a host exposes to its modules.
type directory struct{ users map[string]string }

// Department returns the user's department; an unknown user is an error.
func (d *directory) Department(user string) (string, error) {
	dept, ok := d.users[user]
	if !ok {
		return "", errors.New("no such user: " + user)
	}
	return dept, nil
}

const exposeModule = `local M = {}
function M.init(api)
  api.register_test_callbacks{ run = function(cmd, user)
    if cmd == "dept" then
      local dept, err = host.directory:Department(user) -- a Go error is a second value
      if err ~= nil then error(err:Error()) end
      return dept
    end
    if cmd == "limit" then return host.limit end
    return "none"
  end }
end
return M`

func exposeEngine(t testing.TB, expose map[string]any) *Engine {
	dir := writeFiles(t, map[string]string{"m.lua": exposeModule})
	eng, err := New(context.Background(), Options{
		Config:  &Config{Modules: []ModuleConfig{{Module: filepath.Join(dir, "m.lua"), Instances: 2}}},
		Catalog: catalogWithTestCategory(),
		Expose:  expose,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Close)
	return eng
}

func TestExposedGoValues(t *testing.T) {
	eng := exposeEngine(t, map[string]any{
		"directory": &directory{users: map[string]string{"@alice:x": "sales"}},
		"limit":     42,
	})
	ctx := context.Background()
	for i := 0; i < 2; i++ { // both states of the module see them
		if got, err := eng.Invoke(ctx, "test.run", "dept", "@alice:x"); err != nil || got != "sales" {
			t.Fatalf("dept = %v, %v", got, err)
		}
	}
	if got, err := eng.Invoke(ctx, "test.run", "limit"); err != nil || got != int64(42) {
		t.Errorf("limit = %#v, %v", got, err)
	}
	// A Go error comes back as a second value, as Go returns it.
	if _, err := eng.Invoke(ctx, "test.run", "dept", "@bob:x"); err == nil || !strings.Contains(err.Error(), "no such user: @bob:x") {
		t.Errorf("the module did not see the method's error: %v", err)
	}
}

// BenchmarkExposedMethod is the cost of one call of an exposed Go method
// from a callback: compare with plain, the same callback without it.
func BenchmarkExposedMethod(b *testing.B) {
	eng := exposeEngine(b, map[string]any{"directory": &directory{users: map[string]string{"@alice:x": "sales"}}})
	ctx := context.Background()
	for _, cmd := range []string{"plain", "dept"} {
		b.Run(cmd, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := eng.Invoke(ctx, "test.run", cmd, "@alice:x"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
