package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
)

// TestREPLOnATerminal drives the REPL through a pseudo-terminal: a
// multi-line definition, an error it survives, and Ctrl-C on a runaway call
// that cancels the call, not the REPL.
func TestREPLOnATerminal(t *testing.T) {
	dir := writeDir(t, map[string]string{
		"luamods.yaml": "server_name: example.com\nmodules:\n  - module: spam.lua\n    timeout: 60s\n",
		"spam.lua":     spamModule,
	})
	cmd := exec.Command(binary, "repl", "-c", filepath.Join(dir, "luamods.yaml"))
	cmd.Env = append(cmd.Environ(), "HOME="+dir)
	tty, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	var mu sync.Mutex
	var out bytes.Buffer
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := tty.Read(buf)
			mu.Lock()
			out.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	waitFor := func(what string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			ok := strings.Contains(out.String(), what)
			mu.Unlock()
			if ok {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("never saw %q; the terminal shows:\n%s", what, out.String())
	}
	send := func(s string) {
		t.Helper()
		if _, err := tty.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor("spam.lua> ")
	send("function triple(x)\r")
	waitFor("spam.lua>> ")
	send("return 3 * x end\r")
	send("=triple(14)\r")
	waitFor("42")
	send("error('survived')\r")
	waitFor("stdin:1: survived")
	send("while true do end\r")
	time.Sleep(300 * time.Millisecond)
	send("\x03")
	waitFor("context canceled")
	send("=triple(2)\r")
	waitFor("6")
	send(":quit\r")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("repl exited with %v", err)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("repl did not quit")
	}
}
