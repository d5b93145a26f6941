// Package dendritetest runs a real Dendrite homeserver on 127.0.0.1 for
// tests: SQLite in a temporary folder, its config and signing key from its
// own generate-config and generate-keys, users from create-account, and
// the appservice registrations the test gives. The binaries come from
// $LUAMODS_DENDRITE_BIN (tools/test.sh installs them there); without them
// a test is skipped with a loud message, or fails when CI=true.
package dendritetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Version is the Dendrite release the tests run.
const Version = "v0.13.8"

// startTimeout bounds Dendrite's start (generous: a loaded CI machine).
const startTimeout = 3 * time.Minute

// Server is a running Dendrite.
type Server struct {
	URL        string // http://127.0.0.1:port
	ServerName string
	Dir        string // its folder: config, key, databases, log
	Config     string // dendrite.yaml
	bin        string
	cmd        *exec.Cmd
	exited     chan struct{}
}

// Bin returns the folder holding the Dendrite binaries, skipping t (or
// failing it under CI=true) when they are missing.
func Bin(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("LUAMODS_DENDRITE_BIN")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache", "luamods", "dendrite-"+Version)
	}
	for _, b := range []string{"dendrite", "generate-config", "generate-keys", "create-account"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			msg := fmt.Sprintf("\n*** DENDRITE NOT INSTALLED: %s is missing, so this test against a real homeserver does not run.\n"+
				"*** Install it with tools/test.sh, or: GOBIN=%s go install github.com/matrix-org/dendrite/cmd/{dendrite,generate-keys,generate-config,create-account}@%s\n", filepath.Join(dir, b), dir, Version)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	return dir
}

// Start runs Dendrite for serverName with the given appservice
// registration files; it is stopped when the test ends.
func Start(t testing.TB, serverName string, registrations ...string) *Server {
	t.Helper()
	bin := Bin(t)
	dir := t.TempDir()
	s := &Server{ServerName: serverName, Dir: dir, Config: filepath.Join(dir, "dendrite.yaml"), bin: bin}
	out, err := exec.Command(filepath.Join(bin, "generate-config"), "-ci", "-dir", dir, "-server", serverName).Output()
	if err != nil {
		t.Fatalf("dendrite generate-config: %v", err)
	}
	key := filepath.Join(dir, "matrix_key.pem")
	if b, err := exec.Command(filepath.Join(bin, "generate-keys"), "-private-key", key).CombinedOutput(); err != nil {
		t.Fatalf("dendrite generate-keys: %v\n%s", err, b)
	}
	cfg, err := edit(string(out), map[string]string{
		"private_key: matrix_key.pem":  "private_key: " + key,
		"config_files: []":             "config_files: " + flowList(registrations),
		"registration_disabled: false": "registration_disabled: true",
		"level: trace":                 "level: warn",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.Config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s.start(t)
	return s
}

// edit replaces each key of the generated config by its value; every one
// must be there (Dendrite's generate-config wrote them).
func edit(cfg string, repl map[string]string) (string, error) {
	for from, to := range repl {
		if !strings.Contains(cfg, from) {
			return "", fmt.Errorf("dendrite's generated config has no %q: Dendrite %s expected", from, Version)
		}
		cfg = strings.Replace(cfg, from, to, 1)
	}
	return cfg, nil
}

func flowList(items []string) string {
	quoted := make([]string, len(items))
	for i, s := range items {
		b, _ := json.Marshal(s)
		quoted[i] = string(b)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

// FreeAddr returns a 127.0.0.1 address no one listens on now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// start runs the dendrite process and waits for its client API.
func (s *Server) start(t testing.TB) {
	t.Helper()
	addr := FreeAddr(t)
	s.URL = "http://" + addr
	logf, err := os.Create(filepath.Join(s.Dir, "dendrite.log"))
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(filepath.Join(s.bin, "dendrite"), "-config", s.Config, "-http-bind-address", addr)
	s.cmd.Dir = s.Dir
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("starting dendrite: %v", err)
	}
	s.exited = make(chan struct{})
	go func() { _ = s.cmd.Wait(); logf.Close(); close(s.exited) }()
	t.Cleanup(s.Stop)
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-s.exited:
			t.Fatalf("dendrite exited at start:\n%s", s.Log())
		default:
		}
		resp, err := http.Get(s.URL + "/_matrix/client/versions")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("dendrite did not answer within %s:\n%s", startTimeout, s.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop kills Dendrite (its whole process group) and waits for it.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exited:
		return
	default:
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.exited
}

// Log returns the end of Dendrite's log, for failure messages.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "dendrite.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

var accessToken = regexp.MustCompile(`AccessToken: ([^\s)]+)`)

// CreateUser makes a user with create-account (shared-secret registration)
// and returns a client logged in as it.
func (s *Server) CreateUser(t testing.TB, localpart string, admin bool) *Client {
	t.Helper()
	args := []string{"-config", s.Config, "-url", s.URL, "-username", localpart, "-password", localpart + "-password-123"}
	if admin {
		args = append(args, "-admin")
	}
	out, err := exec.Command(filepath.Join(s.bin, "create-account"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("create-account %s: %v\n%s", localpart, err, out)
	}
	m := accessToken.FindSubmatch(out)
	if m == nil {
		t.Fatalf("create-account %s printed no access token:\n%s", localpart, out)
	}
	return &Client{URL: s.URL, UserID: "@" + localpart + ":" + s.ServerName, Token: string(m[1])}
}

// Client is a Matrix client over the client-server API.
type Client struct {
	URL    string
	UserID string
	Token  string
}

// Do sends a request and decodes the JSON answer into out (when not nil);
// a non-2xx answer is an error with the body.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.URL+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// Must is Do that fails the test on error.
func (c *Client) Must(t testing.TB, method, path string, body, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Do(ctx, method, path, body, out); err != nil {
		t.Fatal(err)
	}
}

// MustSee reads method path into out until it answers and ok(), failing t
// after within. Dendrite answers writes before every read sees them (its
// room server persists events asynchronously), so a read that checks a
// write goes through here.
func (c *Client) MustSee(t testing.TB, within time.Duration, method, path string, out any, ok func() bool) {
	t.Helper()
	var last error
	WaitFor(t, within, method+" "+path+" seeing the write", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		last = c.Do(ctx, method, path, nil, out)
		return last == nil && ok()
	})
}

// WaitFor polls cond every 100 ms until it holds, failing t after within
// (a generous bound: only for "eventually").
func WaitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within %s", what, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
