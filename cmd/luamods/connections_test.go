package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestWarnOverFileLimit(t *testing.T) {
	for _, c := range []struct {
		max    int
		nofile uint64
		want   string // "": no warning
	}{
		{10000, 4096, "max_connections=10000 rlimit_nofile=4096 kept_for_modules=1024"},
		{10000, 11023, "max_connections=10000 rlimit_nofile=11023"},
		{10000, 11024, ""},
		{10000, 1 << 20, ""},
		{10000, ^uint64(0), ""}, // RLIM_INFINITY
	} {
		var buf bytes.Buffer
		warnOverFileLimit(slog.New(slog.NewTextHandler(&buf, nil)), c.max, c.nofile)
		if got := buf.String(); c.want == "" && got != "" || c.want != "" && !strings.Contains(got, c.want) {
			t.Errorf("max %d, nofile %d: logged %q, want %q", c.max, c.nofile, got, c.want)
		}
	}
}

func TestRateLimit(t *testing.T) {
	r := &rateLimit{interval: 10 * time.Second}
	t0 := time.Date(2026, 12, 3, 15, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		after time.Duration
		ok    bool
		held  int
	}{
		{0, true, 0},
		{time.Second, false, 0},
		{9 * time.Second, false, 0},
		{10 * time.Second, true, 2},
		{19 * time.Second, false, 0},
		{time.Minute, true, 1},
	} {
		if ok, held := r.allow(t0.Add(c.after)); ok != c.ok || held != c.held {
			t.Errorf("at +%v: %v, %d held; want %v, %d", c.after, ok, held, c.ok, c.held)
		}
	}
}

// rawConn is a client connection of its own, kept open between requests.
type rawConn struct {
	t *testing.T
	net.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t, c, bufio.NewReader(c)}
}

// send writes a GET of path; it needs no answer from the server.
func (c *rawConn) send(path string) {
	c.t.Helper()
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: luamods\r\n\r\n", path); err != nil {
		c.t.Fatal(err)
	}
}

// answer reads the answer to the request sent last.
func (c *rawConn) answer() (string, error) {
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.Status + " " + string(b), err
}

// get sends a GET of path and returns its body, keeping the connection.
func (c *rawConn) get(path string) string {
	c.t.Helper()
	c.send(path)
	a, err := c.answer()
	if err != nil || !strings.HasPrefix(a, "200 OK ") {
		c.t.Fatalf("GET %s: %q %v", path, a, err)
	}
	return strings.TrimPrefix(a, "200 OK ")
}

// answerAsync reads the answer in a goroutine.
func (c *rawConn) answerAsync() <-chan string {
	ch := make(chan string, 1)
	go func() {
		a, err := c.answer()
		if err != nil {
			a = err.Error()
		}
		ch <- a
	}()
	return ch
}

// metric is the value of the unlabelled metric name in a /metrics page.
func metric(t *testing.T, page, name string) float64 {
	t.Helper()
	for _, line := range strings.Split(page, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no %s in /metrics:\n%s", name, page)
	return 0
}

// notAnswered fails if the request waiting on ch was answered.
func notAnswered(t *testing.T, ch <-chan string) {
	t.Helper()
	select {
	case a := <-ch:
		t.Fatalf("answered while max_connections were open: %q", a)
	default:
	}
}

// answered waits for the request waiting on ch to be answered with OK.
func answered(t *testing.T, ch <-chan string, s *server) {
	t.Helper()
	select {
	case a := <-ch:
		if a != "200 OK OK" {
			t.Fatalf("answer %q", a)
		}
	case <-time.After(time.Minute):
		t.Fatalf("never answered:\n%s", s.log())
	}
}

// TestServeHoldsAtMostMaxConnections: a real luamods serve with
// max_connections: 2 and two connections open leaves a third client
// waiting (its metrics read through one of the two) until one closes; then
// answers it and counts the limit reached. A reload raising the limit lets
// a waiting client in at once.
func TestServeHoldsAtMostMaxConnections(t *testing.T) {
	addr := freePort(t)
	dir := writeDir(t, map[string]string{"luamods.yaml": "listen: " + addr + "\nmax_connections: 2\n"})
	s := startServer(t, dir, "-c", "luamods.yaml")
	if !strings.Contains(s.log(), "max_connections=2") {
		t.Errorf("the listening line does not name max_connections:\n%s", s.log())
	}
	one, two := dialRaw(t, addr), dialRaw(t, addr)
	one.get("/health")
	two.get("/health") // both accepted: each holds a slot while open
	if n := metric(t, one.get("/metrics"), "luamods_open_connections"); n != 2 {
		t.Fatalf("luamods_open_connections %v, want 2", n)
	}

	three := dialRaw(t, addr) // the kernel completes the handshake: the client waits in the backlog
	three.send("/health")
	third := three.answerAsync()
	if n := metric(t, one.get("/metrics"), "luamods_open_connections"); n != 2 {
		t.Fatalf("luamods_open_connections %v with a third client waiting, want 2", n)
	}
	notAnswered(t, third)
	two.Close()
	answered(t, third, s)
	if n := metric(t, one.get("/metrics"), "luamods_connection_limit_reached_total"); n < 1 {
		t.Fatalf("luamods_connection_limit_reached_total %v, want at least 1", n)
	}
	s.waitLog("max_connections reached", 1)

	// At the limit again (one and four, in once three has closed), a
	// reload to max_connections: 3 lets the waiting five in at once.
	three.Close()
	four := dialRaw(t, addr)
	four.get("/health")
	five := dialRaw(t, addr)
	five.send("/health")
	fifth := five.answerAsync()
	notAnswered(t, fifth)
	if err := os.WriteFile(filepath.Join(dir, "luamods.yaml"), []byte("listen: "+addr+"\nmax_connections: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.signal(syscall.SIGHUP)
	answered(t, fifth, s)
	s.waitLog("max_connections changed: applied to new connections", 1)
}
