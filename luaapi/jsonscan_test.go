package luaapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

func TestScanJSON(t *testing.T) {
	deep := strings.Repeat("[", 70) + strings.Repeat("]", 70)
	for _, tc := range []struct {
		name, in     string
		nodes, depth int
	}{
		{"empty", ``, 0, 0},
		{"spaces", " \t\r\n", 0, 0},
		{"scalar", `12.5e-3`, 1, 0},
		{"literals", `[true,false,null]`, 4, 1},
		{"string", `"a"`, 1, 0},
		{"empty containers", `[[],{}]`, 3, 2},
		{"object keys count", `{"a":1,"b":[2,3]}`, 7, 2},
		{"brackets in a string", `["[[[{{{"]`, 2, 1},
		{"escaped quote", `["a\"[{", "b"]`, 3, 1},
		{"escaped backslash ends the string", `["a\\", "[b"]`, 3, 1},
		{"escaped backslash then quote", `{"k\\\"[":"v"}`, 3, 1},
		{"unicode escape", `"\u005b\u007b"`, 1, 0},
		{"multibyte", `["ünï[cödé", 1]`, 3, 1},
		{"deep", deep, 70, 70},
		{"depth is the most open at once", `[[1],[2],[[3]]]`, 8, 3},
		{"invalid: unclosed", `[[[`, 3, 3},
		{"invalid: unterminated string", `["abc[[[`, 2, 1},
		{"invalid: backslash at the end", `"abc\`, 1, 0},
		{"invalid: more closers", `]]]}[`, 1, 1},
		{"invalid: bare words are one node each", `{a:bc d,e}`, 5, 1},
		{"invalid: adjacent quote", `abc"d"`, 2, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ScanJSON([]byte(tc.in))
			if got != (JSONShape{Nodes: tc.nodes, Depth: tc.depth}) {
				t.Fatalf("ScanJSON(%q) = %+v, want {Nodes:%d Depth:%d}", tc.in, got, tc.nodes, tc.depth)
			}
		})
	}
}

func TestCheckJSON(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want error
	}{
		{`[1,2,3]`, 4, nil},
		{`[1,2,3]`, 3, ErrJSONTooLarge},
		{strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth), 1000, nil},
		{strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1), 1000, ErrJSONTooDeep},
		{strings.Repeat("[", MaxDepth+1), 10, ErrJSONTooLarge}, // the count is checked first
	} {
		_, err := CheckJSON([]byte(tc.in), tc.max)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("CheckJSON(%.20q, %d) = %v, want %v", tc.in, tc.max, err, tc.want)
		}
	}
	_, err := CheckJSON([]byte(`[1,2,3]`), 2)
	if want := "too many JSON values: more than 2 values and keys (max_request_json_nodes)"; err == nil || err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
}

func TestScanJSONDoesNotAllocate(t *testing.T) {
	body := []byte(`{"a":[1,2,{"b":"c\"d"}],"e":null}`)
	if n := testing.AllocsPerRun(100, func() { ScanJSON(body) }); n != 0 {
		t.Fatalf("ScanJSON allocated %v times a run", n)
	}
}

// tokenShape is ScanJSON's answer by encoding/json's tokenizer, for valid
// JSON: every token but a closing delimiter is a node.
func tokenShape(data []byte) (JSONShape, error) {
	var sh JSONShape
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	depth := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return sh, nil
		}
		if err != nil {
			return sh, err
		}
		switch tok {
		case json.Delim('['), json.Delim('{'):
			depth++
			sh.Depth = max(sh.Depth, depth)
		case json.Delim(']'), json.Delim('}'):
			depth--
			continue
		}
		sh.Nodes++
	}
}

// FuzzScanJSON: on valid JSON the scan agrees with encoding/json's tokens;
// on anything it never panics and counts at most one node a byte.
func FuzzScanJSON(f *testing.F) {
	for _, seed := range []string{`null`, `[1,"a",{"b":[]}]`, `{"x\"[":{"y":1.5e-9,"z":"\\"}}`, `"\u005b"`, `[[[`, `"\`, `{a:b}`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got := ScanJSON(data)
		if got.Nodes > len(data) || got.Depth > got.Nodes {
			t.Fatalf("%q: %+v", data, got)
		}
		if !json.Valid(data) {
			return
		}
		want, err := tokenShape(data)
		if err != nil {
			t.Fatalf("%q is valid but the tokenizer says %v", data, err)
		}
		if got != want {
			t.Fatalf("%q: ScanJSON %+v, encoding/json %+v", data, got, want)
		}
	})
}

// BenchmarkScanJSON scans a 1 MiB array of small objects.
func BenchmarkScanJSON(b *testing.B) {
	body := bytes.Repeat([]byte(`{"id":12345,"name":"a \"quoted\" name","tags":["x","y"]},`), 1<<20/56)
	body = append(append([]byte("["), body[:len(body)-1]...), ']')
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		ScanJSON(body)
	}
}

// BenchmarkJSONNodeCost measures what one node of request JSON costs once
// DecodeJSONToLua has built it: bytes allocated and bytes still held by
// the Lua value (after a collection), per node, for the shapes an attacker
// would send. jsonNodeCost and max_request_json_nodes' documentation use
// the allocated figure.
func BenchmarkJSONNodeCost(b *testing.B) {
	const n = 100000
	shapes := map[string]string{
		"numbers":       "[" + strings.Repeat("0,", n-1) + "0]",
		"empty arrays":  "[" + strings.Repeat("[],", n/2-1) + "[]]",
		"small objects": "[" + strings.Repeat(`{"a":0},`, n/3-1) + `{"a":0}]`,
		"keys": "{" + func() string {
			var s strings.Builder
			for i := range n / 2 {
				if i > 0 {
					s.WriteByte(',')
				}
				fmt.Fprintf(&s, `"k%d":0`, i)
			}
			return s.String()
		}() + "}",
	}
	for name, body := range shapes {
		data := []byte(body)
		nodes := float64(ScanJSON(data).Nodes)
		b.Run(name, func(b *testing.B) {
			L := lua.NewState(stateOptions)
			defer L.Close()
			var before, after runtime.MemStats
			var held, allocated uint64
			var keep lua.LValue
			for b.Loop() {
				runtime.GC()
				runtime.ReadMemStats(&before)
				v, err := DecodeJSONToLua(L, data)
				if err != nil {
					b.Fatal(err)
				}
				keep = v
				runtime.GC()
				runtime.ReadMemStats(&after)
				held = after.HeapAlloc - before.HeapAlloc
				allocated = after.TotalAlloc - before.TotalAlloc
			}
			runtime.KeepAlive(keep)
			b.ReportMetric(float64(allocated)/nodes, "alloc-B/node")
			b.ReportMetric(float64(held)/nodes, "held-B/node")
		})
	}
}

// jsonModule serves /j: it reads request.json under pcall and answers what
// it got, so a test sees the budget's error as the module does.
const jsonModule = `local M = {}
function M.init(api, config)
  api.register_web_resource("/j", function(request)
    local ok, v = pcall(function() return request.json end)
    if not ok then return {json = {error = tostring(v)}} end
    return {json = {n = type(v) == "table" and #v or -1}}
  end)
end
return M`

// TestRequestJSONBudget: request.json past max_request_json_nodes or
// MaxDepth is an error the module can catch; within it, a table.
func TestRequestJSONBudget(t *testing.T) {
	s, rec := newTestState(t, jsonModule, &Env{MaxJSONNodes: 10})
	entry := rec.routes["/j"]["*"]
	for _, tc := range []struct{ ctype, body, want string }{
		{"", `[1,2,3,4,5,6,7,8,9]`, `{"n":9}`},
		{"", `[1,2,3,4,5,6,7,8,9,10]`, `{"error":"test.lua:4: request.json: too many JSON values: more than 10 values and keys (max_request_json_nodes)"}`},
		{"application/json", `["[[[[[[[[[[[[","\"{{{{{{{{{{{{{"]`, `{"n":2}`},
		{"text/plain+json; charset=utf-8", strings.Repeat("[", MaxDepth+1), `{"error":"test.lua:4: request.json: too many JSON values: more than 10 values and keys (max_request_json_nodes)"}`},
	} {
		resp, err := s.Serve(context.Background(), entry, &Request{Method: "POST", Header: http.Header{"Content-Type": {tc.ctype}}, Body: []byte(tc.body)})
		if err != nil || string(resp.Body) != tc.want {
			t.Errorf("%.30q: %v %s, want %s", tc.body, err, resp.Body, tc.want)
		}
	}
	deep, _ := newTestState(t, jsonModule, &Env{})
	body := strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1)
	resp, err := deep.Serve(context.Background(), entry, &Request{Method: "POST", Header: http.Header{}, Body: []byte(body)})
	if want := `{"error":"test.lua:4: request.json: JSON nested too deeply: 65 levels of arrays and objects, over the limit of 64"}`; err != nil || string(resp.Body) != want {
		t.Errorf("too deep: %v %s, want %s", err, resp.Body, want)
	}
}

// TestJSONDecodeChargesItsNodes: api.json.decode charges what the nodes
// cost in Lua, not the text's length: 300000 numbers in 600 KB are over a
// 64 MiB budget.
func TestJSONDecodeChargesItsNodes(t *testing.T) {
	s, _ := newTestState(t, apiModule(`local src = ... return #api.json.decode(src)`), nil)
	if got, err := callRun(t, s, "["+strings.Repeat("0,", 1000)+"0]"); err != nil || got[0] != int64(1001) {
		t.Fatalf("1001 numbers: %v %v", got, err)
	}
	if _, err := callRun(t, s, "["+strings.Repeat("0,", 300000)+"0]"); err == nil || !strings.Contains(err.Error(), "call memory budget exceeded") {
		t.Fatalf("300001 numbers: %v, want the call memory budget", err)
	}
}

// TestHTTPJSONAnswerBudget: an answer that would cost more than
// max_call_memory in Lua is refused before it is decoded.
func TestHTTPJSONAnswerBudget(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		fmt.Fprint(w, "["+strings.Repeat("0,", n)+"0]")
	}))
	defer srv.Close()
	s, _ := newTestState(t, apiModule(`local url = ... local ok, v = pcall(api.http_client.get_json, url) if ok then return #v end return v.msg`), &Env{HTTP: loopbackClient(), MaxCallMemory: 1 << 20})
	if got, err := callRun(t, s, srv.URL+"?n=99"); err != nil || got[0] != int64(100) {
		t.Fatalf("100 numbers: %v %v", got, err)
	}
	got, err := callRun(t, s, srv.URL+"?n=9999")
	if err != nil || !strings.Contains(fmt.Sprint(got[0]), "answer too large to decode: 10001 values and keys would take about 2900289 bytes in Lua, over max_call_memory (1048576 bytes)") {
		t.Fatalf("10000 numbers: %v %v", got, err)
	}
}
