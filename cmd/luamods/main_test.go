package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is luamods built once for the tests that run it as a process.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "luamods-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "luamods")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building luamods: %v\n%s", err, out)
		os.Exit(1)
	}
	// Every test starts servers of its own, on ports the kernel hands out
	// again once a server is gone: a kept-alive connection to a server that
	// has exited could be reused for a new server on the same port and fail
	// the request (a rare failure seen under load). One connection per request.
	http.DefaultTransport.(*http.Transport).DisableKeepAlives = true
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func writeDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// runCLI runs the in-process CLI.
func runCLI(dir string, stdin string, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	wd, _ := os.Getwd()
	if dir != "" {
		os.Chdir(dir)
		defer os.Chdir(wd)
	}
	code = run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

const spamModule = `local M = {}
function M.init(api, config)
  api.register_spam_checker_callbacks{
    user_may_invite = function(inviter, invitee, room)
      if room == "!crash:x" then error("crashed on purpose") end
      if room == config.bad_room then return api.errors.FORBIDDEN, {reason = "bad room"} end
      return api.NOT_SPAM
    end,
  }
end
return M`

func TestCheckAndCall(t *testing.T) {
	dir := writeDir(t, map[string]string{
		"luamods.yaml": "server_name: example.com\nmodules:\n  - module: spam.lua\n    config: {bad_room: '!bad:x'}\n",
		"spam.lua":     spamModule,
		"broken.yaml":  "modules:\n  - module: spam.lua\n  - module: 7\n  - module: missing.lua\n",
	})
	cfg := filepath.Join(dir, "luamods.yaml")
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"check ok", []string{"check", "-c", cfg}, 0, "OK: 1 modules, 1 callbacks, 0 routes", ""},
		{"check lists every error", []string{"check", "-c", filepath.Join(dir, "broken.yaml")}, 1, "",
			"Error in configuration at 'modules.<item 1>.module': expected a string"},
		{"call deny", []string{"call", "-c", cfg, "spam_checker.user_may_invite", `"@a:x"`, `"@b:x"`, `"!bad:x"`}, 0, `["M_FORBIDDEN",{"reason":"bad room"}]`, ""},
		{"call allow", []string{"call", "-c", cfg, "spam_checker.user_may_invite", `"@a:x"`, `"@b:x"`, `"!ok:x"`}, 0, `"NOT_SPAM"`, ""},
		{"call none registered", []string{"call", "-c", cfg, "account_validity.is_user_expired", `"@a:x"`}, 0, "null", ""},
		{"call failing", []string{"call", "-c", cfg, "spam_checker.user_may_invite", `"@a:x"`, `"@b:x"`, `"!crash:x"`}, 1, "", "spam.lua:5: crashed on purpose"},
		{"call bad json", []string{"call", "-c", cfg, "spam_checker.user_may_invite", `{nope`}, 2, "", "argument 1 is not one JSON value"},
		{"call unknown", []string{"call", "-c", cfg, "spam_checker.nope"}, 1, "", "unknown callback"},
		{"version", []string{"version"}, 0, "luamods ", ""},
		{"unknown verb", []string{"frobnicate"}, 2, "", "unknown command"},
		{"unknown flag", []string{"check", "--frobnicate"}, 2, "", "unknown flag"},
		{"extra argument", []string{"check", "-c", cfg, "extra"}, 2, "", "unknown command"},
		{"too few arguments", []string{"call", "-c", cfg}, 2, "", "requires at least 1 arg"},
		{"config and default", []string{"check", "-c", cfg, "--default"}, 2, "", "exclude each other"},
		{"check the shipped default", []string{"check", "--default"}, 0, "OK: 4 modules", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runCLI("", "", c.args...)
			if code != c.code || !strings.Contains(stdout, c.stdout) || !strings.Contains(stderr, c.stderr) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %d, %q, %q", code, stdout, stderr, c.code, c.stdout, c.stderr)
			}
		})
	}
	// Every problem of broken.yaml is listed.
	_, _, stderr := runCLI("", "", "check", "-c", filepath.Join(dir, "broken.yaml"))
	if !strings.Contains(stderr, "missing.lua not found") {
		t.Errorf("check stopped at the first error: %s", stderr)
	}
}

func TestCheckWithoutConfigurationIsAUsageError(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr := runCLI(dir, "", "check")
	want := filepath.Join(dir, "luamods.yaml")
	if code != 2 || stdout != "" || !strings.Contains(stderr, want+" not found") || !strings.Contains(stderr, "--default") {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 2 naming %s", code, stdout, stderr, want)
	}
}

func TestREPLThroughAPipe(t *testing.T) {
	dir := writeDir(t, map[string]string{
		"luamods.yaml": "server_name: example.com\nmodules:\n  - module: spam.lua\n    config: {bad_room: '!bad:x'}\n  - module: hello.lua\n",
		"spam.lua":     spamModule,
		"hello.lua":    `local M = {} function M.init(api) api.register_web_resource("/_synapse/client/hi", function(r) return {status = 200, json = {q = r.query.q}} end) end return M`,
	})
	input := strings.Join([]string{
		`=api.server_name`,
		`1 + 2`,
		`function double(x)`,
		`  return x * 2`,
		`end`,
		`double(21)`,
		`error("oops")`,
		`:modules`,
		`:callbacks`,
		`:routes`,
		`:invoke spam_checker.user_may_invite "@a:x" "@b:x" "!bad:x"`,
		`:use hello.lua`,
		`=type(M.init)`,
		`:http GET /_synapse/client/hi?q=7`,
		`:nonsense`,
		`:quit`,
		`1`,
	}, "\n")
	code, stdout, stderr := runCLI("", input, "repl", "-c", filepath.Join(dir, "luamods.yaml"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := []string{
		`"example.com"`, "\n3\n", "\n42\n", "error: ", "stdin:1: oops",
		"* spam.lua", "spam_checker.user_may_invite: spam.lua", "/_synapse/client/hi * (hello.lua",
		`["M_FORBIDDEN",{"reason":"bad room"}]`, `"function"`, `200 {"q":"7"}`, "unknown command :nonsense",
	}
	for _, w := range want {
		if !strings.Contains(stdout, w) {
			t.Errorf("output lacks %q:\n%s", w, stdout)
		}
	}
	if strings.HasSuffix(strings.TrimSpace(stdout), "\n1") {
		t.Error("input after :quit was evaluated")
	}
	if strings.Contains(stdout, "\nnil\n") {
		t.Errorf("a statement printed nil:\n%s", stdout)
	}
	// A module named on the command line is the one the REPL starts in.
	_, stdout, _ = runCLI("", "=type(M)\n:modules\n", "repl", "-c", filepath.Join(dir, "luamods.yaml"), "hello.lua")
	if !strings.Contains(stdout, "* hello.lua") {
		t.Errorf("repl -c FILE hello.lua did not start in hello.lua:\n%s", stdout)
	}
}

// server is a real `luamods serve` process.
type server struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string
	mu   sync.Mutex
	logs bytes.Buffer
}

func startServer(t *testing.T, dir string, args ...string) *server {
	t.Helper()
	return startServerCmd(t, dir, exec.Command(binary, append([]string{"serve"}, args...)...))
}

// startServerCmd starts cmd, a luamods serve command line, in dir.
func startServerCmd(t *testing.T, dir string, cmd *exec.Cmd) *server {
	t.Helper()
	s := &server{t: t, cmd: cmd}
	s.cmd.Dir = dir
	stderr, _ := s.cmd.StderrPipe()
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.logs.WriteString(line + "\n")
			s.mu.Unlock()
			if i := strings.Index(line, "msg=listening addr="); i >= 0 {
				listening <- strings.Fields(line[i+len("msg=listening addr="):])[0]
			}
			if i := strings.Index(line, `"msg":"listening","addr":"`); i >= 0 { // log_format: json
				rest := line[i+len(`"msg":"listening","addr":"`):]
				listening <- rest[:strings.Index(rest, `"`)]
			}
		}
	}()
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			s.cmd.Process.Kill()
			s.cmd.Wait()
		}
	})
	select {
	case s.addr = <-listening:
	case <-time.After(20 * time.Second):
		t.Fatalf("luamods serve did not start:\n%s", s.log())
	}
	return s
}

func (s *server) log() string { s.mu.Lock(); defer s.mu.Unlock(); return s.logs.String() }

func (s *server) get(path string) (int, string) {
	s.t.Helper()
	resp, err := http.Get("http://" + s.addr + path)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (s *server) signal(sig syscall.Signal) {
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatal(err)
	}
}

// waitLog waits until the log has n lines containing substr.
func (s *server) waitLog(substr string, n int) {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Count(s.log(), substr) >= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("log never had %d× %q:\n%s", n, substr, s.log())
}

func handler(answer string) string {
	return `local M = {}
function M.init(api)
  api.register_web_resource("/_synapse/client/answer", function(r)
    if r.query.slow then api.sleep(0.5) end
    return {status = 200, body = "` + answer + `"}
  end)
end
return M`
}

func TestServeReloadsOnSIGHUP(t *testing.T) {
	addr := freePort(t)
	dir := writeDir(t, map[string]string{
		"luamods.yaml": "listen: " + addr + "\nadmin_token: tok\nmodules:\n  - module: app.lua\n",
		"app.lua":      handler("one"),
	})
	s := startServer(t, dir, "-c", "luamods.yaml")
	if _, body := s.get("/_synapse/client/answer"); body != "one" {
		t.Fatalf("got %q", body)
	}
	// /metrics shows the Go runtime and the process beside luamods' own.
	if code, body := s.get("/metrics"); code != 200 || !strings.Contains(body, "\ngo_goroutines ") || !strings.Contains(body, "\nprocess_resident_memory_bytes ") {
		t.Errorf("/metrics: %d, without go_goroutines or process_resident_memory_bytes:\n%.2000s", code, body)
	}
	s.waitLog("reload: kill -HUP", 1) // the start note is written after the listening line
	for _, want := range []string{
		"luamods is serving on http://" + addr + " (pid " + strconv.Itoa(s.cmd.Process.Pid) + ")",
		"try:    curl http://" + addr + "/_synapse/client/answer",
		"admin:  http://" + addr + "/_luamods/v1/",
		"reload: kill -HUP " + strconv.Itoa(s.cmd.Process.Pid) + ", after editing luamods.yaml",
	} {
		if !strings.Contains(s.log(), want) {
			t.Errorf("the start note lacks %q:\n%s", want, s.log())
		}
	}
	// A request in flight across the swap completes on the old code.
	slow := make(chan string)
	go func() { _, body := s.get("/_synapse/client/answer?slow=1"); slow <- body }()
	time.Sleep(100 * time.Millisecond)
	os.WriteFile(filepath.Join(dir, "app.lua"), []byte(handler("two")), 0o644)
	s.signal(syscall.SIGHUP)
	s.waitLog("msg=reloaded", 1)
	if _, body := s.get("/_synapse/client/answer"); body != "two" {
		t.Fatalf("after SIGHUP got %q", body)
	}
	if body := <-slow; body != "one" {
		t.Fatalf("in-flight request got %q, want the old answer", body)
	}
	// Broken changes leave the old code answering and the process alive.
	for i, bad := range []string{
		"local M = {\n",
		"local M = {} function M.parse_config() error('no') end function M.init() end return M",
		"local M = {} function M.init(api) api.register_web_resource('/health', function() end) end return M",
	} {
		os.WriteFile(filepath.Join(dir, "app.lua"), []byte(bad), 0o644)
		s.signal(syscall.SIGHUP)
		s.waitLog("reload failed", i+1)
		if code, body := s.get("/_synapse/client/answer"); code != 200 || body != "two" {
			t.Fatalf("after broken reload %d: %d %q", i, code, body)
		}
	}
	if !strings.Contains(s.log(), "app.lua:1: syntax error") {
		t.Errorf("the log does not name file:line:\n%s", s.log())
	}
	// luamods reload: the scriptable alternative.
	os.WriteFile(filepath.Join(dir, "app.lua"), []byte(handler("three")), 0o644)
	code, stdout, stderr := runCLI(dir, "", "reload", "-c", "luamods.yaml")
	if code != 0 || !strings.Contains(stdout, `"Changed":["app.lua"]`) {
		t.Fatalf("luamods reload: %d %s %s", code, stdout, stderr)
	}
	if _, body := s.get("/_synapse/client/answer"); body != "three" {
		t.Fatalf("after luamods reload got %q", body)
	}
	os.WriteFile(filepath.Join(dir, "app.lua"), []byte("local M = {"), 0o644)
	if code, _, _ := runCLI(dir, "", "reload", "-c", "luamods.yaml"); code == 0 {
		t.Fatal("luamods reload of a broken module exited 0")
	}
	// SIGTERM: graceful stop.
	s.signal(syscall.SIGTERM)
	done := make(chan error)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, s.log())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not stop on SIGTERM")
	}
}

func TestServeRunsTheShippedDefault(t *testing.T) {
	if ln, err := net.Listen("tcp", "127.0.0.1:8008"); err != nil {
		t.Skip("127.0.0.1:8008 is busy")
	} else {
		ln.Close()
	}
	s := startServer(t, t.TempDir())
	code, body := s.get("/_synapse/client/hello?name=ci")
	if code != 200 || !strings.Contains(body, `"message":"hello, ci"`) {
		t.Fatalf("%d %s", code, body)
	}
	s.waitLog("run: luamods serve -c scripts/luamods.yaml", 1)
	if !strings.Contains(s.log(), "running the shipped default configuration") || !strings.Contains(s.log(), "msg=route path=/_synapse/client/hello") ||
		!strings.Contains(s.log(), "admin:  off (the invoke API answers 404)") || !strings.Contains(s.log(), "run: luamods serve -c scripts/luamods.yaml") {
		t.Errorf("log:\n%s", s.log())
	}
}

func TestTestVerb(t *testing.T) {
	code, stdout, _ := runCLI("", "", "test", "../../scripts")
	if code != 0 || !strings.Contains(stdout, " passed, 0 failed") {
		t.Fatalf("example tests: exit %d\n%s", code, stdout)
	}
	dir := writeDir(t, map[string]string{
		"m.lua":      `local M = {} function M.init(api) api.register_account_validity_callbacks{ is_user_expired = function() return false end } end return M`,
		"m_test.lua": "test('expired', function()\n  local m = luamods.load('m.lua')\n  expect.eq(m:invoke('account_validity.is_user_expired', '@a:x'), true)\nend)\n",
	})
	code, stdout, _ = runCLI("", "", "test", dir)
	if code == 0 || !strings.Contains(stdout, "m_test.lua:3: expected true, got false") || !strings.Contains(stdout, "0 passed, 1 failed") {
		t.Fatalf("failing test: exit %d\n%s", code, stdout)
	}
}

func TestServeWatchReloadsOnChange(t *testing.T) {
	addr := freePort(t)
	dir := writeDir(t, map[string]string{
		"luamods.yaml": "listen: " + addr + "\nmodules:\n  - module: app.lua\n",
		"app.lua":      handler("one"),
	})
	s := startServer(t, dir, "-c", "luamods.yaml", "--watch")
	os.WriteFile(filepath.Join(dir, "app.lua"), []byte(handler("two")), 0o644)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, body := s.get("/_synapse/client/answer"); body == "two" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("--watch did not reload the changed script:\n%s", s.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	os.WriteFile(filepath.Join(dir, "app.lua"), []byte("local M = {"), 0o644)
	s.waitLog("reload failed", 1)
	time.Sleep(2500 * time.Millisecond) // more polls: the same broken file is not reloaded again
	if n := strings.Count(s.log(), "reload failed"); n != 1 {
		t.Errorf("a broken file was reloaded %d times", n)
	}
	if _, body := s.get("/_synapse/client/answer"); body != "two" {
		t.Fatalf("after a broken change got %q", body)
	}
}

// log_format: json makes every log line one JSON object (slog's JSON
// handler), route failures and module lines included.
func TestServeLogsJSON(t *testing.T) {
	addr := freePort(t)
	dir := writeDir(t, map[string]string{
		"luamods.yaml": "listen: " + addr + "\nlog_format: json\nmodules:\n  - module: app.lua\n",
		"app.lua":      handler("one"),
	})
	s := startServer(t, dir, "-c", "luamods.yaml")
	if _, body := s.get("/_synapse/client/answer"); body != "one" {
		t.Fatalf("got %q", body)
	}
	s.waitLog("reload: kill -HUP", 1) // the start note is written after the listening line
	jsonLines := 0
	for _, line := range strings.Split(s.log(), "\n") {
		if !strings.HasPrefix(line, "{") {
			if strings.HasPrefix(line, "time=") {
				t.Errorf("a text log line: %q", line)
			}
			continue // the start note on stderr is for people
		}
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil || entry["msg"] == nil || entry["level"] == nil {
			t.Errorf("not a JSON log line: %q (%v)", line, err)
		}
		jsonLines++
	}
	if jsonLines < 3 || !strings.Contains(s.log(), `"msg":"route","path":"/_synapse/client/answer"`) {
		t.Errorf("log:\n%s", s.log())
	}
}

func TestLogFormatIsChecked(t *testing.T) {
	dir := writeDir(t, map[string]string{"luamods.yaml": "log_format: xml\nmodules: []\n"})
	code, _, stderr := runCLI("", "", "check", "-c", filepath.Join(dir, "luamods.yaml"))
	if code != 1 || !strings.Contains(stderr, "Error in configuration at 'log_format': expected text or json") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}
