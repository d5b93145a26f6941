package main

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestEmbeddedServer builds the example, runs it, and exercises its native
// route, a module route, and the spam-checked hook point.
func TestEmbeddedServer(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "embedded")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	ln, _ = net.Listen("tcp", "127.0.0.1:0")
	netAddr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "-listen", addr, "-nethttp", netAddr, "-c", "luamods.yaml")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	base := "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		if resp, err := http.Get(base + "/health"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the example did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, c := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"GET", "/native/hello?name=go", "", 200, `{"message":"hello, go"}`},
		{"GET", "/_synapse/client/hello?name=lua", "", 200, `{"message":"hello, lua"}`},
		{"POST", "/rooms/!r:example.com/send", `{"body":"hi there"}`, 200, `"event_id"`},
		{"POST", "/rooms/!r:example.com/send", `{"body":"cheap VIAGRA"}`, 403, `"reason":"banned word"`},
		// The module asks the server's user directory (host.users).
		{"GET", "/_synapse/client/whois?user=@alice:example.com", "", 200, `{"department":"sales","user_id":"@alice:example.com"}`},
		{"GET", "/_synapse/client/whois?user=@eve:example.com", "", 404, `"error":"unknown user @eve:example.com"`},
		// The same module routes on the net/http server.
		{"GET", "net/_synapse/client/hello?name=mux", "", 200, `{"message":"hello, mux"}`},
		{"GET", "net/_synapse/client/whois?user=@bob:example.com", "", 200, `"department":"support"`},
		{"GET", "net/_synapse/client/nothing", "", 404, `"errcode":"M_UNRECOGNIZED"`},
		{"GET", "net/native/hello?name=go", "", 200, `{"message":"hello, go"}`},
	} {
		url := base + c.path
		if rest, ok := strings.CutPrefix(c.path, "net/"); ok {
			url = "http://" + netAddr + "/" + rest
		}
		req, _ := http.NewRequest(c.method, url, strings.NewReader(c.body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(body), c.want) {
			t.Errorf("%s %s = %d %s, want %d with %s", c.method, c.path, resp.StatusCode, body, c.status, c.want)
		}
	}
}
