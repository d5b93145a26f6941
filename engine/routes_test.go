package engine

import (
	"strings"
	"testing"
)

// TestReservedRoutePaths: a module route that is a reserved prefix, lies
// inside one or contains one is refused with the reserved path named.
func TestReservedRoutePaths(t *testing.T) {
	for _, c := range []struct{ path, want string }{
		{"/_synapse/client/hello", ""},
		{"/_matrix/clientx", ""},
		{"/_synapse/client/", ""},
		{"/_matrix/client", "is under /_matrix/client"},
		{"/_matrix/client/v3/login", "is under /_matrix/client"},
		{"/_synapse/admin/v1/users", "is under /_synapse/admin"},
		{"/_matrix", "contains /_matrix/client"},
		{"/_matrix/", "contains /_matrix/client"},
		{"/_synapse", "contains /_synapse/admin"},
		{"/_matrix/app/v1/transactions", "is under /_matrix/app"},
		{"/_matrix-internal/identity/v1/check_credentials", "is under /_matrix-internal"},
		{"/_luamods", "is under /_luamods"},
		{"/health", "is under /health"},
		{"/metrics/x", "is under /metrics"},
		{"/", "would shadow every server path"},
		{"/a/../_matrix/client", "must be clean"},
		{"/a/./b", "must be clean"},
		{"/a//b", "plain path"},
		{"a/b", "must start with /"},
	} {
		err := checkPath(c.path)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: refused: %v", c.path, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: err = %v, want %q", c.path, err, c.want)
		}
	}
}

// TestMatchCleansThePath: a subpath never carries . or .. segments, decoded
// or not, and cannot climb out of its route.
func TestMatchCleansThePath(t *testing.T) {
	hello, other := &Route{Path: "/_synapse/client/hello"}, &Route{Path: "/_synapse/client/other"}
	g := &Generation{routes: map[string]*Route{hello.Path: hello, other.Path: other}, paths: []string{hello.Path, other.Path}}
	for _, c := range []struct {
		path    string
		route   *Route
		subpath string
	}{
		{"/_synapse/client/hello", hello, ""},
		{"/_synapse/client/hello/a/b", hello, "/a/b"},
		{"/_synapse/client/hello/a/../b", hello, "/b"},
		{"/_synapse/client/hello/../../../etc/passwd", nil, ""},
		{"/_synapse/client/hello/../other/x", other, "/x"},
		{"/_synapse/client/hello//a/./b/", hello, "/a/b/"},
		{"/x/../_synapse/client/hello/..", nil, ""},
	} {
		r, sub, ok := g.Match(c.path)
		if r != c.route || sub != c.subpath || ok != (c.route != nil) {
			t.Errorf("Match(%q) = %v, %q, %v; want %v, %q", c.path, r, sub, ok, c.route, c.subpath)
		}
	}
}

// TestCleanPath: path.Clean with a leading slash, keeping a trailing one;
// a clean path costs no allocation (it is cleaned on every request).
func TestCleanPath(t *testing.T) {
	for in, want := range map[string]string{
		"": "/", "/": "/", "a": "/a", "a/": "/a/", "/a/b/": "/a/b/", "//a//b/../c": "/a/c", "/a/./b": "/a/b", "/..": "/",
	} {
		if got := cleanPath(in); got != want {
			t.Errorf("cleanPath(%q) = %q, want %q", in, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { cleanPath("/_synapse/client/hello") }); n != 0 {
		t.Errorf("cleanPath of a clean path allocates %v times", n)
	}
}
