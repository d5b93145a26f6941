package engine

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestHomeserverConfig(t *testing.T) {
	dir := writeFiles(t, map[string]string{"luamods.yaml": `server_name: example.com
listen: 127.0.0.1:9009
homeserver:
  url: http://127.0.0.1:8008
  registration: ./reg.yaml
  admin_token_path: admin.token
worker_name: worker1
email: {app_name: Example Chat}
modules: []
`})
	cfg, err := LoadConfig(filepath.Join(dir, "luamods.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	hs := cfg.Homeserver
	if hs == nil || hs.URL != "http://127.0.0.1:8008" || hs.Registration != filepath.Join(dir, "reg.yaml") || hs.AdminTokenPath != filepath.Join(dir, "admin.token") {
		t.Fatalf("homeserver: %+v", hs)
	}
	if cfg.WorkerName != "worker1" || cfg.EmailAppName != "Example Chat" {
		t.Fatalf("worker_name %q, email_app_name %q", cfg.WorkerName, cfg.EmailAppName)
	}
	cfg, err = ParseConfig("x.yaml", []byte("worker_name: null\nmodules: []\n"))
	if err != nil || cfg.WorkerName != "" || cfg.Homeserver != nil {
		t.Fatalf("null worker_name: %+v %v", cfg, err)
	}
}

func TestHomeserverConfigErrors(t *testing.T) {
	cases := []struct{ config, want string }{
		{"homeserver: {registration: r.yaml}\n", "at 'homeserver.url': expected the homeserver's URL"},
		{"homeserver: {url: 'http://h:8008'}\n", "at 'homeserver.registration': expected the path of the appservice registration file"},
		{"homeserver: {url: 'ftp://h', registration: r.yaml}\n", "at 'homeserver.url': expected an http:// or https:// URL"},
		{"homeserver: {url: 'http://h', registration: r.yaml, admin_tokn_path: x}\n", `at 'homeserver': unknown key "admin_tokn_path" (did you mean "admin_token_path"?)`},
		{"homeserver: [1]\n", "at 'homeserver': expected a mapping"},
		{"worker_name: [1]\n", "at 'worker_name': expected a string"},
		{"email: {app_nam: x}\n", `at 'email': unknown key "app_nam"`},
	}
	for _, c := range cases {
		t.Run(c.want, func(t *testing.T) {
			_, err := ParseConfig("x.yaml", []byte(c.config))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}

func TestRegistrationRoundTrip(t *testing.T) {
	cfg := &Config{ServerName: "example.com", Listen: "127.0.0.1:9009"}
	a, err := NewRegistration(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewRegistration(cfg)
	if a.ASToken == b.ASToken || a.HSToken == b.HSToken || a.ASToken == a.HSToken || len(a.ASToken) != 64 {
		t.Fatalf("tokens are not fresh: %+v %+v", a, b)
	}
	if a.URL != "http://127.0.0.1:9009" || a.SenderLocalpart != "luamods" || a.RateLimited {
		t.Fatalf("registration: %+v", a)
	}
	users := a.Namespaces.Users
	if len(users) != 1 || users[0].Exclusive {
		t.Fatalf("users namespace: %+v", users)
	}
	re := regexp.MustCompile(users[0].Regex)
	if !re.MatchString("@alice:example.com") || re.MatchString("@alice:exampleXcom") || re.MatchString("@alice:other.org") {
		t.Fatalf("regex %q", users[0].Regex)
	}
	body, err := a.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "reg.yaml")
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := LoadRegistration(path)
	if err != nil || got.Namespaces.Users[0] != users[0] || got.ASToken != a.ASToken || got.HSToken != a.HSToken || got.ID != "luamods" {
		t.Fatalf("loaded %+v, %v", got, err)
	}
	if _, err := NewRegistration(&Config{Listen: "x"}); err == nil || !strings.Contains(err.Error(), "server_name") {
		t.Fatalf("no server_name: %v", err)
	}
}

func TestLoadRegistrationErrors(t *testing.T) {
	dir := writeFiles(t, map[string]string{"partial.yaml": "id: x\nas_token: a\n", "bad.yaml": "id: [\n"})
	cases := []struct{ file, want string }{
		{"partial.yaml", "has no hs_token, sender_localpart"},
		{"bad.yaml", "not a valid appservice registration"},
		{"missing.yaml", "reading the appservice registration: open "},
	}
	for _, c := range cases {
		if _, err := LoadRegistration(filepath.Join(dir, c.file)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.file, err, c.want)
		}
	}
}
