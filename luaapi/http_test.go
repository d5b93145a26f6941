package luaapi

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// TestBlocklistCoversEveryAddressForm: a blocked IPv4 range is blocked in
// every IPv6 form that reaches it, and zoned addresses never pass.
func TestBlocklistCoversEveryAddressForm(t *testing.T) {
	bl, err := ParsePrefixes(DefaultBlocklist)
	if err != nil {
		t.Fatal(err)
	}
	c := NewHTTPClient(HTTPPolicy{Blocklist: bl})
	for _, tc := range []struct {
		addr    string
		allowed bool
	}{
		{"93.184.216.34", true},
		{"2606:2800:220:1:248:1893:25c8:1946", true},
		{"127.0.0.1", false},
		{"10.1.2.3", false},
		{"::1", false},
		{"::", false},
		{"::1%lo", false},
		{"fe80::1%eth0", false},
		{"2606:2800:220:1:248:1893:25c8:1946%eth0", false}, // a zone on a public address too
		{"::ffff:127.0.0.1", false},                        // IPv4-mapped
		{"::ffff:10.0.0.1", false},
		{"::ffff:93.184.216.34", false}, // the mapped range is blocked as a whole
		{"::127.0.0.1", false},          // IPv4-compatible (::/96)
		{"::93.184.216.34", false},
		{"64:ff9b::127.0.0.1", false}, // NAT64
		{"64:ff9b::a00:1", false},
		{"64:ff9b:1::7f00:1", false},                    // local-use NAT64
		{"2002:7f00:1::", false},                        // 6to4 of 127.0.0.1
		{"2002:a00:1:1::1", false},                      // 6to4 of 10.0.0.1
		{"2002:5db8:d822::1", true},                     // 6to4 of a public address
		{"2001:0:4136:e378:8000:63bf:80ff:fffe", false}, // Teredo, client 127.0.0.1 inverted
		{"2001:0:a00:1::1", false},                      // Teredo, server 10.0.0.1
		{"2001:db8::5efe:7f00:1", false},                // ISATAP of 127.0.0.1
		{"2001:db8::200:5efe:a00:1", false},             // ISATAP of 10.0.0.1
		{"fec0::1", false},                              // site-local
	} {
		if got := c.Allowed(netip.MustParseAddr(tc.addr)); got != tc.allowed {
			t.Errorf("Allowed(%s) = %v, want %v", tc.addr, got, tc.allowed)
		}
	}
	// An allowlist exception for 127.0.0.1 lets its mapped forms through,
	// never its zoned ones.
	al, _ := ParsePrefixes([]string{"127.0.0.1", "::1"})
	open := NewHTTPClient(HTTPPolicy{Blocklist: bl, Allowlist: al})
	for addr, want := range map[string]bool{"127.0.0.1": true, "::ffff:127.0.0.1": true, "::1": true, "::1%lo": false, "127.0.0.2": false} {
		if got := open.Allowed(netip.MustParseAddr(addr)); got != want {
			t.Errorf("with the allowlist, Allowed(%s) = %v, want %v", addr, got, want)
		}
	}
}

// TestZonedLoopbackIsRefused: a real request to [::1%25lo] (which
// netip.Prefix.Contains never matched) is refused before it connects.
func TestZonedLoopbackIsRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	reached := make(chan struct{}, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached <- struct{}{}
		w.Write([]byte(`{}`))
	}))
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	bl, _ := ParsePrefixes(DefaultBlocklist)
	c := NewHTTPClient(HTTPPolicy{Blocklist: bl})
	port := ln.Addr().(*net.TCPAddr).Port
	for _, url := range []string{
		"http://[::1%25lo]:" + strconv.Itoa(port) + "/",
		"http://[::ffff:127.0.0.1]:" + strconv.Itoa(port) + "/",
		"http://[::1]:" + strconv.Itoa(port) + "/",
	} {
		_, err := c.do(context.Background(), &httpRequest{method: "GET", url: url, headers: http.Header{}})
		if !errors.Is(err, ErrBlocked) && (err == nil || !strings.Contains(err.Error(), "blocked")) {
			t.Errorf("%s: err = %v, want blocked", url, err)
		}
	}
	select {
	case <-reached:
		t.Fatal("a refused request reached the server")
	default:
	}
}
