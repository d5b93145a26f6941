package luaapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"syscall"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// DefaultBlocklist is what outbound HTTP refuses when the configuration sets
// no ip_range_blocklist: loopback, private, link-local, CGNAT, unique-local,
// multicast and unspecified ranges, the IPv4-compatible and IPv4-mapped
// IPv6 ranges, and the NAT64 prefixes. (Whatever the list, an IPv6 address
// that embeds a blocked IPv4 address is refused too: see Allowed.)
var DefaultBlocklist = []string{
	"127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
	"169.254.0.0/16", "0.0.0.0/8", "192.0.0.0/24", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4",
	"::1/128", "::/128", "fe80::/10", "fc00::/7", "ff00::/8", "64:ff9b::/96",
	"::/96", "::ffff:0:0/96", "64:ff9b:1::/48", "fec0::/10",
}

// HTTPPolicy configures api.http_client.
type HTTPPolicy struct {
	Blocklist       []netip.Prefix // refused destinations (checked on the resolved address)
	Allowlist       []netip.Prefix // exceptions to Blocklist
	Timeout         time.Duration  // per request, within the call's deadline; default 60 s
	MaxResponseSize int64          // bytes; default 10 MiB
	UserAgent       string
	// Transport replaces the network (tests' fake HTTP); the IP lists are
	// not consulted then, as nothing is dialled.
	Transport http.RoundTripper
}

// ParsePrefixes parses CIDR ranges (a bare address is a single-host range).
func ParsePrefixes(ranges []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(ranges))
	for _, r := range ranges {
		if !strings.Contains(r, "/") {
			a, err := netip.ParseAddr(r)
			if err != nil {
				return nil, fmt.Errorf("%q is not an IP range: %w", r, err)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(r)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP range: %w", r, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// HTTPClient is the outbound HTTP client behind api.http_client. It checks
// every connection's resolved address, redirects included, against the
// policy. Safe for concurrent use.
type HTTPClient struct {
	policy HTTPPolicy
	client *http.Client
}

// NewHTTPClient returns a client enforcing p.
func NewHTTPClient(p HTTPPolicy) *HTTPClient {
	if p.Timeout <= 0 {
		p.Timeout = 60 * time.Second
	}
	if p.MaxResponseSize <= 0 {
		p.MaxResponseSize = 10 << 20
	}
	if p.UserAgent == "" {
		p.UserAgent = "luamods"
	}
	c := &HTTPClient{policy: p}
	dialer := &net.Dialer{Timeout: 10 * time.Second, Control: c.checkDial}
	transport := &http.Transport{
		Proxy:               nil, // a proxy would hide the real destination from the blocklist
		DialContext:         dialer.DialContext,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
	}
	c.client = &http.Client{Transport: transport}
	if p.Transport != nil {
		c.client.Transport = p.Transport
	}
	return c
}

// ErrBlocked is the cause of a request refused by the IP blocklist.
var ErrBlocked = errors.New("destination address is blocked by ip_range_blocklist")

// Allowed reports whether the policy lets connections reach addr. An
// address with a zone (fe80::1%eth0, ::1%lo) is refused outright:
// netip.Prefix.Contains is false for every zoned address, so no range would
// ever match it. An IPv6 address is refused when the IPv4 address it
// embeds (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo, ISATAP) is.
func (c *HTTPClient) Allowed(addr netip.Addr) bool {
	if addr.Zone() != "" {
		return false
	}
	if inRanges(c.policy.Allowlist, addr) || inRanges(c.policy.Allowlist, addr.Unmap()) {
		return true
	}
	if inRanges(c.policy.Blocklist, addr) || inRanges(c.policy.Blocklist, addr.Unmap()) {
		return false
	}
	for _, v4 := range embeddedIPv4(addr) {
		if inRanges(c.policy.Blocklist, v4) && !inRanges(c.policy.Allowlist, v4) {
			return false
		}
	}
	return true
}

func inRanges(ranges []netip.Prefix, addr netip.Addr) bool {
	for _, p := range ranges {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// embeddedIPv4 returns the IPv4 addresses an IPv6 address carries by one of
// the transition mechanisms: IPv4-compatible (::a.b.c.d), NAT64
// (64:ff9b::/96, 64:ff9b:1::/48's last 32 bits), 6to4 (2002:aabb:ccdd::/16),
// Teredo (2001::/32: the server, and the client's bits inverted) and ISATAP
// (an interface identifier of 0:5efe or 200:5efe).
func embeddedIPv4(addr netip.Addr) []netip.Addr {
	if !addr.Is6() {
		return nil
	}
	b := addr.As16()
	v4 := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{b[i], b[i+1], b[i+2], b[i+3]}) }
	var out []netip.Addr
	switch {
	case [10]byte(b[:10]) == [10]byte{}: // ::/80: IPv4-compatible (and mapped)
		out = append(out, v4(12))
	case b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b: // NAT64
		out = append(out, v4(12))
	case b[0] == 0x20 && b[1] == 0x02: // 6to4
		out = append(out, v4(2))
	case b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0: // Teredo
		client := v4(12).As4()
		for i := range client {
			client[i] ^= 0xff
		}
		out = append(out, v4(4), netip.AddrFrom4(client))
	}
	if (b[8]|0x02) == 0x02 && b[9] == 0 && b[10] == 0x5e && b[11] == 0xfe { // ISATAP
		out = append(out, v4(12))
	}
	return out
}

func (c *HTTPClient) checkDial(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot parse %q", ErrBlocked, address)
	}
	if !c.Allowed(ap.Addr()) {
		return fmt.Errorf("%w: %s", ErrBlocked, ap.Addr())
	}
	return nil
}

// HTTPError is raised in Lua as {code=, msg=, body=} for a non-2xx answer
// (code is the status) or a failure to get one (code 0), like Synapse's
// HttpResponseException.
type HTTPError struct {
	Code int
	Msg  string
	Body string
}

// Error is "HTTP <code>: <msg>", or msg when there was no answer.
func (e *HTTPError) Error() string {
	if e.Code == 0 {
		return e.Msg
	}
	return fmt.Sprintf("HTTP %d: %s", e.Code, e.Msg)
}

// LuaValue is the error table.
func (e *HTTPError) LuaValue(L *lua.LState) lua.LValue {
	t := L.CreateTable(0, 3)
	t.RawSetString("code", lua.LNumber(e.Code))
	t.RawSetString("msg", lua.LString(e.Msg))
	t.RawSetString("body", lua.LString(e.Body))
	return t
}

// httpRequest is one outbound request, read from Lua by the state's owner.
type httpRequest struct {
	method   string
	url      string
	headers  http.Header
	body     []byte
	json     bool // decode the answer as JSON
	timeout  time.Duration
	rawReply bool // request(): answer {status, headers, body}
}

// httpResponse is what the request got.
type httpResponse struct {
	status  int
	headers http.Header
	body    []byte
}

// Do sends req under ctx (and the policy's timeout) and reads the answer.
func (c *HTTPClient) do(ctx context.Context, req *httpRequest) (*httpResponse, error) {
	timeout := c.policy.Timeout
	if req.timeout > 0 && req.timeout < timeout {
		timeout = req.timeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var body io.Reader
	if req.body != nil {
		body = strings.NewReader(string(req.body))
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, req.url, body)
	if err != nil {
		return nil, &HTTPError{Msg: fmt.Sprintf("%s %s: %v", req.method, req.url, err)}
	}
	if hr.URL.Scheme != "http" && hr.URL.Scheme != "https" {
		return nil, &HTTPError{Msg: fmt.Sprintf("%s %s: only http and https URLs are allowed", req.method, req.url)}
	}
	hr.Header = req.headers
	hr.Header.Set("User-Agent", c.policy.UserAgent)
	resp, err := c.client.Do(hr)
	if err != nil {
		return nil, &HTTPError{Msg: fmt.Sprintf("%s %s: %v", req.method, req.url, unwrapURLError(err))}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.policy.MaxResponseSize+1))
	if err != nil {
		return nil, &HTTPError{Msg: fmt.Sprintf("%s %s: reading the answer: %v", req.method, req.url, err)}
	}
	if int64(len(data)) > c.policy.MaxResponseSize {
		return nil, &HTTPError{Code: resp.StatusCode, Msg: fmt.Sprintf("%s %s: answer over %d bytes", req.method, req.url, c.policy.MaxResponseSize)}
	}
	return &httpResponse{status: resp.StatusCode, headers: resp.Header, body: data}, nil
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// httpTable is api.http_client.
func (s *State) httpTable() *lua.LTable {
	t := s.L.CreateTable(0, 4)
	t.RawSetString("get_json", s.asyncLua("http_client.get_json", func(L *lua.LState) (AsyncFunc, error) {
		req, err := newHTTPRequest(L, "GET", L.CheckString(1), L.Get(2), L.Get(3))
		req.json = true
		return s.httpAsync(req), err
	}))
	t.RawSetString("post_json_get_json", s.asyncLua("http_client.post_json_get_json", func(L *lua.LState) (AsyncFunc, error) {
		req, err := newHTTPRequest(L, "POST", L.CheckString(1), lua.LNil, L.Get(3))
		if err == nil {
			err = req.setJSONBody(L.Get(2))
		}
		req.json = true
		return s.httpAsync(req), err
	}))
	t.RawSetString("put_json", s.asyncLua("http_client.put_json", func(L *lua.LState) (AsyncFunc, error) {
		req, err := newHTTPRequest(L, "PUT", L.CheckString(1), L.Get(3), L.Get(4))
		if err == nil {
			err = req.setJSONBody(L.Get(2))
		}
		req.json = true
		return s.httpAsync(req), err
	}))
	t.RawSetString("request", s.asyncLua("http_client.request", func(L *lua.LState) (AsyncFunc, error) {
		method := strings.ToUpper(L.CheckString(1))
		opts, _ := L.Get(3).(*lua.LTable)
		var args, headers lua.LValue = lua.LNil, lua.LNil
		if opts != nil {
			args, headers = opts.RawGetString("args"), opts.RawGetString("headers")
		}
		req, err := newHTTPRequest(L, method, L.CheckString(2), args, headers)
		if err != nil {
			return nil, err
		}
		req.rawReply = true
		if opts != nil {
			if b, ok := opts.RawGetString("body").(lua.LString); ok {
				req.body = []byte(b)
			}
			if j := opts.RawGetString("json"); j != lua.LNil {
				if err := req.setJSONBody(j); err != nil {
					return nil, err
				}
			}
			if n, ok := opts.RawGetString("timeout").(lua.LNumber); ok {
				req.timeout = floatDuration(float64(n), time.Second)
			}
		}
		return s.httpAsync(req), nil
	}))
	return t
}

func newHTTPRequest(L *lua.LState, method, rawURL string, args, headers lua.LValue) (*httpRequest, error) {
	req := &httpRequest{method: method, url: rawURL, headers: http.Header{}}
	if t, ok := args.(*lua.LTable); ok {
		u, err := url.Parse(rawURL)
		if err != nil {
			return req, fmt.Errorf("bad URL %q: %w", rawURL, err)
		}
		q := u.Query()
		if err := eachStringValue(t, q.Add); err != nil {
			return req, fmt.Errorf("args: %w", err)
		}
		u.RawQuery = q.Encode()
		req.url = u.String()
	}
	if t, ok := headers.(*lua.LTable); ok {
		if err := eachStringValue(t, req.headers.Add); err != nil {
			return req, fmt.Errorf("headers: %w", err)
		}
	}
	return req, nil
}

// eachStringValue calls add for name → value and name → {value, ...}.
func eachStringValue(t *lua.LTable, add func(k, v string)) error {
	var err error
	eachField(t, func(k, v lua.LValue) {
		name := k.String()
		switch x := v.(type) {
		case *lua.LTable:
			eachField(x, func(_, e lua.LValue) { add(name, e.String()) })
		case lua.LString, lua.LNumber, lua.LBool:
			add(name, x.String())
		default:
			err = fmt.Errorf("%s: a %s is not a string", name, v.Type())
		}
	})
	return err
}

func (r *httpRequest) setJSONBody(v lua.LValue) error {
	gv, err := FromLua(v)
	if err != nil {
		return fmt.Errorf("body: %w", err)
	}
	b, err := EncodeJSON(gv)
	if err != nil {
		return fmt.Errorf("body: %w", err)
	}
	r.body = b
	r.headers.Set("Content-Type", "application/json")
	return nil
}

func (s *State) httpAsync(req *httpRequest) AsyncFunc {
	client := s.opts.Env.HTTP
	return func(ctx context.Context) (func(*lua.LState) []lua.LValue, error) {
		if client == nil {
			return nil, &HTTPError{Msg: "outbound HTTP is not configured"}
		}
		resp, err := client.do(ctx, req)
		if err != nil {
			return nil, err
		}
		if req.rawReply {
			if resp.status < 200 || resp.status > 299 {
				return nil, &HTTPError{Code: resp.status, Msg: http.StatusText(resp.status), Body: string(resp.body)}
			}
			return func(L *lua.LState) []lua.LValue { return []lua.LValue{responseTable(L, resp)} }, nil
		}
		if resp.status < 200 || resp.status > 299 {
			return nil, &HTTPError{Code: resp.status, Msg: http.StatusText(resp.status), Body: string(resp.body)}
		}
		if err := s.checkJSONAnswer(resp.body); err != nil {
			return nil, &HTTPError{Code: resp.status, Msg: err.Error(), Body: string(resp.body)}
		}
		return func(L *lua.LState) []lua.LValue {
			lv, err := DecodeJSONToLua(L, resp.body)
			if err != nil {
				return []lua.LValue{lua.LNil}
			}
			return []lua.LValue{lv}
		}, nil
	}
}

func responseTable(L *lua.LState, resp *httpResponse) *lua.LTable {
	t := L.CreateTable(0, 3)
	t.RawSetString("status", lua.LNumber(resp.status))
	t.RawSetString("body", lua.LString(resp.body))
	h := L.CreateTable(0, len(resp.headers))
	names := make([]string, 0, len(resp.headers))
	for k := range resp.headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		h.RawSetString(strings.ToLower(k), lua.LString(strings.Join(resp.headers[k], ", ")))
	}
	t.RawSetString("headers", h)
	return t
}

// checkJSONAnswer tells, off the state's owner and without building any
// value, whether an answer decodes within the call's budget: valid JSON,
// nested at most MaxDepth deep, and costing at most max_call_memory once
// decoded into Lua.
func (s *State) checkJSONAnswer(body []byte) error {
	if !json.Valid(body) {
		// The syntax error: Unmarshal checks the grammar before it decodes.
		return fmt.Errorf("answer is not JSON: %w", json.Unmarshal(body, new(json.RawMessage)))
	}
	sh := ScanJSON(body)
	if err := sh.depthError(); err != nil {
		return fmt.Errorf("answer too large to decode: %w", err)
	}
	if cost, max := jsonCost(body, sh), s.maxCallMemory(); int64(cost) > max {
		return fmt.Errorf("answer too large to decode: %d values and keys would take about %d bytes in Lua, over max_call_memory (%d bytes)", sh.Nodes, cost, max)
	}
	return nil
}
