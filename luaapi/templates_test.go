package luaapi

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// templateState loads a module in a folder holding files, whose callback
// run(expr-chosen code) is body.
func templateState(t testing.TB, files map[string]string, body string) *State {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := NewState(Options{Module: "m", Dir: dir, Sandbox: true, Env: &Env{Catalog: testCatalog{"spam_checker"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	proto, err := Compile(apiModule(body), "m.lua")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Load(ctx, &Chunk{proto: proto}); err != nil {
		t.Fatal(err)
	}
	if err := s.ParseConfig(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Init(ctx, &recorder{}); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestReadTemplatesRenders(t *testing.T) {
	files := map[string]string{
		"templates/notice.html":  `<p>Hello {{ name }}, {{ link|default("no link") }}</p>{% include "footer.txt" %}`,
		"templates/notice.txt":   `Hello {{ name }}{% for r in rooms %} [{{ r }}]{% endfor %}{% if expired %} expired{% endif %}`,
		"footer.txt":             `<b>{{ name }}</b>`,
		"templates/footer.txt":   `--{{ name|upper }}`,
		"other.xml":              `<x>{{ v }}</x>`,
		"plain.txt":              `{{ v }}`,
		"templates/custom/a.txt": "custom a",
		"a.txt":                  "module a",
	}
	s := templateState(t, files, `local case = ...
    if case == "html" then
      local t = api.read_templates({"notice.html", "notice.txt"}, "templates")
      return t[1]:render{name = "<Ann & Bob>"}, t[2]:render{name = "<Ann>", rooms = {"!a", "!b"}, expired = true}
    elseif case == "default_dir" then
      local t = api.read_templates({"other.xml", "plain.txt", "a.txt"})
      return t[1]:render{v = "<&>"}, t[2]:render{v = "<&>"}, t[3]:render()
    elseif case == "custom_first" then
      return api.read_templates({"a.txt"}, "templates/custom")[1]:render()
    end`)
	for _, c := range []struct {
		name string
		want []any
	}{
		{"html", []any{`<p>Hello &lt;Ann &amp; Bob&gt;, no link</p>--&lt;ANN &amp; BOB&gt;`, `Hello <Ann> [!a] [!b] expired`}},
		{"default_dir", []any{`<x>&lt;&amp;&gt;</x>`, `<&>`, `module a`}},
		{"custom_first", []any{`custom a`}},
	} {
		got, err := s.Call(context.Background(), "cb:spam_checker.run", c.name)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if len(got) != len(c.want) {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s[%d]: got %q, want %q", c.name, i, got[i], c.want[i])
			}
		}
	}
}

func TestReadTemplatesStaysInsideTheModuleFolder(t *testing.T) {
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("secret"), 0o644)
	files := map[string]string{
		"inc.txt":    `{% include "../secret.txt" %}`,
		"broken.txt": `{% if %}`,
		"big.txt":    `{% for i in range(10) %}{{ s }}{% endfor %}`,
		"long.txt":   `{% for i in range(n) %}{% endfor %}`,
	}
	s := templateState(t, files, `local names, dir = ...
    local t = api.read_templates(names, dir)
    return t[1]:render{n = 2000000, s = string.rep("x", 1048576)}`)
	if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(s.opts.Dir, "link.txt")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		names []any
		dir   any
		want  string
	}{
		{[]any{"../secret.txt"}, nil, `template name "../secret.txt" must be a relative path inside the module's folder`},
		{[]any{"/etc/passwd"}, nil, `must be a relative path inside the module's folder`},
		{[]any{"x.txt"}, "..", `custom template folder ".." is outside the module's folder`},
		{[]any{"x.txt"}, outside, `is outside the module's folder`},
		{[]any{"link.txt"}, nil, `escapes`},
		{[]any{"inc.txt"}, nil, `must be a relative path inside the module's folder`},
		{[]any{"missing.txt"}, nil, `template "missing.txt" not found (looked for `},
		{[]any{"broken.txt"}, nil, `template broken.txt`},
		{[]any{"big.txt"}, nil, `render big.txt: output over 4194304 bytes`},
		{[]any{"long.txt"}, nil, `range of 2000000 items is over the limit of 100000`},
	} {
		_, err := s.Call(context.Background(), "cb:spam_checker.run", c.names, c.dir)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v in %v: got %v, want an error containing %q", c.names, c.dir, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") && !strings.Contains(err.Error(), "secret.txt") {
			t.Errorf("%v: the error shows a file from outside: %v", c.names, err)
		}
	}
}

// BenchmarkTemplateRender renders a small HTML template from Lua: the cost
// of a :render call with a few variables and a loop.
func BenchmarkTemplateRender(b *testing.B) {
	s := templateState(b, map[string]string{
		"mail.html": `<p>Hello {{ name }}, your account expires on {{ expiry }}.</p>{% for r in rooms %}<li>{{ r }}</li>{% endfor %}<a href="{{ link }}">renew</a>`,
	}, `T = T or api.read_templates({"mail.html"})[1]
    local t = T
    return t:render{name = "<Ann>", expiry = "2026-12-03", rooms = {"!a", "!b", "!c"}, link = "https://x/renew?t=abc"}`)
	ctx := context.Background()
	for b.Loop() {
		if _, err := s.Call(ctx, "cb:spam_checker.run"); err != nil {
			b.Fatal(err)
		}
	}
}
