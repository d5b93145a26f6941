package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestProtocolConfig(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"secret":         " from-file\n",
		"empty":          "\n",
		"good.yaml":      "http_antispam:\n  authorization_path: secret\nrest_auth:\n  authorization: inline\n  max_request_body: 1KiB\n",
		"off.yaml":       "modules: []\n",
		"none.yaml":      "http_antispam: {max_request_body: 1KiB}\n",
		"both.yaml":      "rest_auth:\n  authorization: a\n  authorization_path: secret\n",
		"missing.yaml":   "http_antispam:\n  authorization_path: nothere\n",
		"emptyf.yaml":    "http_antispam:\n  authorization_path: empty\n",
		"emptys.yaml":    "rest_auth: {authorization: ''}\n",
		"typo.yaml":      "http_antispam: {authorisation: x}\n",
		"notmap.yaml":    "rest_auth: yes\n",
		"async.yaml":     "http_antispam:\n  authorization: x\n  async: {user_may_join_room: true, check_event_for_spam: false}\n",
		"badasync.yaml":  "http_antispam:\n  authorization: x\n  async: {user_may_jump: true, user_may_invite: maybe}\n",
		"restasync.yaml": "rest_auth:\n  authorization: x\n  async: {}\n",
	})
	cfg, err := LoadConfig(dir + "/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if a := cfg.HTTPAntispam; a == nil || a.Authorization != "from-file" || a.MaxBody != DefaultProtocolBody {
		t.Errorf("http_antispam: %+v", a)
	}
	if r := cfg.RestAuth; r == nil || r.Authorization != "inline" || r.MaxBody != 1024 {
		t.Errorf("rest_auth: %+v", r)
	}
	if a, err := LoadConfig(dir + "/async.yaml"); err != nil || !a.HTTPAntispam.Async["user_may_join_room"] || a.HTTPAntispam.Async["check_event_for_spam"] {
		t.Errorf("async: %v %+v", err, a)
	}
	if _, err := LoadConfig(dir + "/badasync.yaml"); err == nil || !strings.Contains(err.Error(), "'http_antispam.async.user_may_invite': expected true or false") {
		t.Errorf("a non-boolean async value: %v", err)
	}
	if off, err := LoadConfig(dir + "/off.yaml"); err != nil || off.HTTPAntispam != nil || off.RestAuth != nil {
		t.Errorf("without the sections both are off: %v %+v", err, off)
	}
	for file, want := range map[string]string{
		"none.yaml":      "at 'http_antispam': authorization or authorization_path is required",
		"both.yaml":      "at 'rest_auth.authorization_path': set authorization or authorization_path, not both",
		"missing.yaml":   "at 'http_antispam.authorization_path'",
		"emptyf.yaml":    "the file empty is empty",
		"emptys.yaml":    "at 'rest_auth.authorization': the secret is empty",
		"typo.yaml":      `unknown key "authorisation" (did you mean "authorization"?)`,
		"notmap.yaml":    "at 'rest_auth': expected a mapping",
		"badasync.yaml":  `at 'http_antispam.async': "user_may_jump" is not a spam-checker callback`,
		"restasync.yaml": `unknown key "async"`,
	} {
		_, err := LoadConfig(dir + "/" + file)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", file, err, want)
		}
	}
}

// TestReloadAppliesRotatedSecrets: a secret file that changed is a change,
// though luamods.yaml's bytes are the same.
func TestReloadAppliesRotatedSecrets(t *testing.T) {
	eng, _, err := startEngine(t, map[string]string{
		"luamods.yaml": "admin_token_file: admin.token\nhttp_antispam: {authorization_path: spam.token}\nmodules: []\n",
		"admin.token":  "admin-1\n",
		"spam.token":   "spam-1\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if report, err := eng.Reload(ctx); err != nil || !report.Unchanged {
		t.Fatalf("a reload with nothing changed: %+v %v", report, err)
	}
	dir := filepath.Dir(eng.Current().Config.Path)
	if err := os.WriteFile(filepath.Join(dir, "spam.token"), []byte("spam-2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "admin.token"), []byte("admin-2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if report, err := eng.Reload(ctx); err != nil || report.Unchanged {
		t.Fatalf("rotated secrets were not applied: %+v %v", report, err)
	}
	if cfg := eng.Current().Config; cfg.HTTPAntispam.Authorization != "spam-2" || cfg.AdminToken != "admin-2" {
		t.Errorf("after the reload: %q %q", cfg.HTTPAntispam.Authorization, cfg.AdminToken)
	}
}
