package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// attackModule serves /_synapse/client/attack?a=NAME, running the attack
// NAME, and the spam checker user_may_invite(NAME, ...) for the invoke API;
// "ok" answers normally.
const attackModule = `local M = {}
local attacks = {
  rep_overflow = function() return string.rep("abcd", 2^62) end,
  rep_empty = function() return string.rep("", 1e10) end,
  format_width = function() return string.format(string.rep("%1000000[1]s", 1000), "x") end,
  format_pointer = function() return string.format("%p %T", {}, {}) end,
  gsub_expand = function() return string.gsub("(" .. string.rep("x", 2^20) .. ")", "%b()", string.rep("%0", 1000)) end,
  concat = function() local t = {} for i = 1, 10 do t[i] = string.rep("x", 2^23) end return table.concat(t) end,
  json_dag = function() local t = {string.rep("x", 1000)} for i = 1, 30 do t = {t, t} end return api.json.encode(t) end,
  result_dag = function() local t = {string.rep("x", 1000)} for i = 1, 30 do t = {t, t} end return {status = 200, json = t} end,
  unpack = function() return unpack({}, 1, 1e6) end,
  byte = function() return string.byte(string.rep("x", 2^20), 1, -1) end,
  find_backtrack = function() return string.find(string.rep("a", 30000), ".-.-b") end,
  sort = function() local t = {} for i = 1, 3e5 do t[i] = -i end table.sort(t) table.sort(t, function(a, b) return a > b end) return #t end,
  pcall_recursion = function() local function f() pcall(f) pcall(f) end f() end,
  spin = function() while true do end end,
  concat_doubling = function() local s = string.rep("x", 2^23) for i = 1, 40 do s = s .. s end return #s end,
  sparse_array = function() local t = {} t[67108863] = 1 return #t end,
  table_growth = function() local t = {} for i = 1, 1e9 do t[i] = {i} end end,
  os_date = function() return os.date(string.rep("%c", 2^23)) end,
  regex_nesting = function() return api.regex.compile(string.rep("(", 999) .. "x" .. string.rep(")", 999)) end,
  regex_repeat = function() return api.regex.compile(string.rep("x{1000}", 1000)) end,
  error_long = function() error(string.rep("x", 2^24)) end,
}
function M.init(api_)
  api = api_
  local function run(name)
    if name == "ok" then return "alive" end
    return attacks[name]()
  end
  api.register_web_resource("/_synapse/client/attack", function(r)
    local out = run(r.query.a)
    if type(out) == "table" then return out end
    return {status = 200, body = tostring(out)}
  end)
  api.register_spam_checker_callbacks{ user_may_invite = function(name) run(name) return "NOT_SPAM" end }
end
return M
`

// TestAttacksAgainstARealServer runs every attack of issue 11 through a
// route and the invoke API of a real luamods serve process under a virtual
// memory cap of 8 GiB, with memory_limit 512 MiB. Each attack must be
// answered with a 500 M_UNKNOWN, the process must stay up, and the next
// call to the module must succeed. Nothing here is timed: how long past
// its deadline a caller waits is luaapi.BenchmarkAnswerPastDeadline's
// measure. The process's peak RSS is logged, not judged: it is
// memory_limit plus what one VM instruction (a doubling s .. s) allocates
// before the governor's stop lands, 0.9 to 1.9 GiB here.
func TestAttacksAgainstARealServer(t *testing.T) {
	if os.Getenv("LUAMODS_ATTACK_TEST") == "" {
		t.Skip("set LUAMODS_ATTACK_TEST=1 (tools/test.sh does, as a step of its own): the attacks allocate gigabytes")
	}
	dir := writeDir(t, map[string]string{
		"luamods.yaml": "listen: " + freePort(t) + "\nadmin_token: attack-test\nmemory_limit: 512MiB\n" +
			"modules:\n  - module: attack.lua\n    timeout: 1s\n",
		"attack.lua": attackModule,
	})
	cmd := exec.Command("bash", "-c", `ulimit -v 8388608 && exec "$0" serve`, binary)
	s := startServerCmd(t, dir, cmd)
	client := &http.Client{Timeout: 5 * time.Minute}
	request := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, "http://"+s.addr+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer attack-test")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", method, path, err, s.log())
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, string(b)
	}
	route := func(name string) (int, string) { return request("GET", "/_synapse/client/attack?a="+name, "") }
	invoke := func(name string) (int, string) {
		return request("POST", "/_luamods/v1/invoke/spam_checker/user_may_invite", fmt.Sprintf(`[%q, "@b:x", "!r:x"]`, name))
	}
	// heapInUse is the server's Go heap in use, from its /metrics.
	heapInUse := func() float64 {
		_, body := request("GET", "/metrics", "")
		for _, line := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(line, "go_memstats_heap_inuse_bytes "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				return f
			}
		}
		t.Fatalf("no go_memstats_heap_inuse_bytes in /metrics")
		return 0
	}
	// The module answers again (a rebuilt state may take a moment to start),
	// and the heap is back under memory_limit: a retired state may still be
	// finishing one long instruction (a doubling s .. s) that holds its
	// memory, and while the heap is over the limit the governor fails every
	// call in flight, the next attack's included.
	recovered := func(name string) {
		t.Helper()
		for i := 0; ; i++ {
			status, body := route("ok")
			if status == 200 && body == "alive" && heapInUse() < 512<<20 {
				return
			}
			if i == 3000 { // 5 minutes: a guard against a hang, not a judgement of speed
				t.Fatalf("after %s the module never answered again with the heap under the limit: %d %s, heap in use %.0f MiB\n%s", name, status, body, heapInUse()/(1<<20), s.log())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	recovered("start")
	var table bytes.Buffer
	fmt.Fprintf(&table, "\n%-18s %-7s %6s\n", "attack", "via", "status")
	// Most attacks end in an error (500 M_UNKNOWN); string.rep("", 1e10) is
	// just "" at once, a sort of 300000 numbers finishes, and the expanding
	// table only hurts as a route's result, and t[67108863] = 1 is one hash
	// entry (luaapi.MaxArrayPart).
	answers := map[string]int{"rep_empty": 200, "sort": 200, "result_dag/invoke": 200, "sparse_array": 200}
	for _, name := range []string{
		"rep_overflow", "rep_empty", "format_width", "format_pointer", "gsub_expand", "concat", "json_dag",
		"result_dag", "unpack", "byte", "find_backtrack", "sort", "pcall_recursion", "spin", "concat_doubling",
		"sparse_array", "table_growth", "os_date", "regex_nesting", "regex_repeat", "error_long",
	} {
		for _, via := range []struct {
			name string
			do   func(string) (int, string)
		}{{"route", route}, {"invoke", invoke}} {
			status, body := via.do(name)
			fmt.Fprintf(&table, "%-18s %-7s %6d\n", name, via.name, status)
			want := answers[name]
			if w, ok := answers[name+"/"+via.name]; ok {
				want = w
			}
			if want == 0 {
				want = 500
			}
			if status != want || (want == 500 && !strings.Contains(body, "M_UNKNOWN")) {
				log := s.log()
				t.Errorf("%s via %s: %d %s, want %d; the server's last log lines:\n%s", name, via.name, status, body, want, log[max(0, len(log)-3000):])
			}
			if err := s.cmd.Process.Signal(syscall.Signal(0)); err != nil || s.cmd.ProcessState != nil {
				t.Fatalf("the server died after %s via %s:\n%s", name, via.name, s.log())
			}
			recovered(name)
		}
	}
	t.Log(table.String())
	t.Logf("peak RSS %d MiB (memory_limit 512 MiB)", peakRSS(t, s.cmd.Process.Pid)>>20)
}

// peakRSS is the peak resident set size of process pid (VmHWM), in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}
