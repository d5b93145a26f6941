package luaapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"
	"weak"

	lua "github.com/yuin/gopher-lua"
)

// event20 is a Matrix event with 20 entries over two levels.
func event20() map[string]any {
	return map[string]any{
		"type": "m.room.message", "sender": "@alice:example.com", "room_id": "!room:example.com",
		"event_id": "$abcdefghijklmnop", "origin_server_ts": int64(1732600000000), "depth": 12,
		"content": map[string]any{
			"msgtype": "m.text", "body": "hello world", "format": "org.matrix.custom.html",
			"formatted_body": "<b>hello</b> world", "m.mentions": map[string]any{"user_ids": []any{"@bob:example.com"}},
		},
		"unsigned": map[string]any{"age": 1234, "transaction_id": "txn1"},
		"hashes":   map[string]any{"sha256": "aGVsbG8"},
	}
}

const handlerModule = `local M = {}
function M.init(api)
  api.register_spam_checker_callbacks{ run = function(ev) return ev.content.body end }
end
return M`

// BenchmarkCallEngine is a call through the State: the owner goroutine,
// a deadline, a coroutine, conversion both ways.
func BenchmarkCallEngine(b *testing.B) {
	s, _ := newTestState(b, handlerModule, nil)
	ev := event20()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		res, err := s.Call(ctx, "cb:spam_checker.run", ev)
		if err != nil || res[0] != "hello world" {
			b.Fatal(res, err)
		}
	}
}

// BenchmarkCallByHand is the floor: the same conversion and a protected
// call on a state owned by the benchmark goroutine, no engine.
func BenchmarkCallByHand(b *testing.B) {
	L := lua.NewState(stateOptions)
	defer L.Close()
	for _, open := range []lua.LGFunction{lua.OpenBase, lua.OpenTable, lua.OpenString, lua.OpenMath} {
		open(L)
	}
	if err := L.DoString(`function run(ev) return ev.content.body end`); err != nil {
		b.Fatal(err)
	}
	fn := L.GetGlobal("run").(*lua.LFunction)
	ev := event20()
	b.ReportAllocs()
	for b.Loop() {
		arg, err := ToLua(L, ev)
		if err != nil {
			b.Fatal(err)
		}
		if err := L.CallByParam(lua.P{Fn: fn, NRet: 1, Protect: true}, arg); err != nil {
			b.Fatal(err)
		}
		res, err := FromLua(L.Get(-1))
		L.Pop(1)
		if err != nil || res != "hello world" {
			b.Fatal(res, err)
		}
	}
}

// BenchmarkCallEngineParallel calls one state from many goroutines.
func BenchmarkCallEngineParallel(b *testing.B) {
	s, _ := newTestState(b, handlerModule, nil)
	ev := event20()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Call(context.Background(), "cb:spam_checker.run", ev); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkNewState creates a module state: sandbox, api table, chunk,
// parse_config and init.
func BenchmarkNewState(b *testing.B) {
	proto, err := Compile(handlerModule, "bench.lua")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		s, err := NewState(Options{Module: "bench", Sandbox: true, Env: &Env{Catalog: testCatalog{"spam_checker"}}})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Load(ctx, &Chunk{proto: proto}); err != nil {
			b.Fatal(err)
		}
		if err := s.ParseConfig(ctx, map[string]any{}); err != nil {
			b.Fatal(err)
		}
		if err := s.Init(ctx, &recorder{}); err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}

// BenchmarkIdleStateMemory reports the heap an idle loaded module state
// keeps (bytes/state), measured over 200 live states. Each lap starts only
// once the last lap's states are collected (weak pointers tell), so that
// their release is not subtracted from this lap's states.
func BenchmarkIdleStateMemory(b *testing.B) {
	proto, _ := Compile(handlerModule, "bench.lua")
	ctx := context.Background()
	var gone []weak.Pointer[State]
	for b.Loop() {
		const n = 200
		awaitCollected(b, gone)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		states := make([]*State, n)
		for i := range states {
			s, err := NewState(Options{Module: "bench", Sandbox: true, Env: &Env{Catalog: testCatalog{"spam_checker"}}})
			if err != nil {
				b.Fatal(err)
			}
			_ = s.Load(ctx, &Chunk{proto: proto})
			_ = s.ParseConfig(ctx, map[string]any{})
			_ = s.Init(ctx, &recorder{})
			_, _ = s.Call(ctx, "cb:spam_checker.run", event20())
			states[i] = s
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/n, "bytes/state")
		gone = gone[:0]
		for _, s := range states {
			s.Close()
			gone = append(gone, weak.Make(s))
		}
	}
}

// awaitCollected runs the garbage collector until every state is freed.
func awaitCollected(b *testing.B, states []weak.Pointer[State]) {
	for try := 0; ; try++ {
		runtime.GC()
		alive := 0
		for _, w := range states {
			if w.Value() != nil {
				alive++
			}
		}
		if alive == 0 {
			return
		}
		if try == 100 {
			b.Fatalf("%d closed states are still reachable", alive)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkAsync200x50ms is 200 concurrent calls on one state, each doing
// a 50 ms get_json against a loopback server.
func BenchmarkAsync200x50ms(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond)
		w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()
	s, _ := newTestState(b, apiModule(`return api.http_client.get_json((...)).ok`), &Env{HTTP: loopbackClient()})
	for b.Loop() {
		var wg sync.WaitGroup
		for i := 0; i < 200; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if res, err := s.Call(context.Background(), "cb:spam_checker.run", srv.URL); err != nil || res[0] != true {
					b.Error(res, err)
				}
			}()
		}
		wg.Wait()
	}
}

// BenchmarkCallEngineEmpty is the engine's fixed cost: a call with no
// arguments returning nothing.
func BenchmarkCallEngineEmpty(b *testing.B) {
	s, _ := newTestState(b, `local M = {}
function M.init(api) api.register_spam_checker_callbacks{ run = function() return nil end } end
return M`, nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Call(ctx, "cb:spam_checker.run"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCallByHandEmpty is the floor of BenchmarkCallEngineEmpty.
func BenchmarkCallByHandEmpty(b *testing.B) {
	L := lua.NewState(stateOptions)
	defer L.Close()
	lua.OpenBase(L)
	if err := L.DoString(`function run() return nil end`); err != nil {
		b.Fatal(err)
	}
	fn := L.GetGlobal("run").(*lua.LFunction)
	b.ReportAllocs()
	for b.Loop() {
		if err := L.CallByParam(lua.P{Fn: fn, NRet: 1, Protect: true}); err != nil {
			b.Fatal(err)
		}
		L.Pop(1)
	}
}

// BenchmarkCompiledSize reports the heap a compiled script keeps
// (bytes/proto): handlerModule compiled 100 times, all kept alive.
func BenchmarkCompiledSize(b *testing.B) {
	for b.Loop() {
		const n = 100
		protos := make([]*lua.FunctionProto, n)
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i := range protos {
			p, err := Compile(handlerModule, "bench.lua")
			if err != nil {
				b.Fatal(err)
			}
			protos[i] = p
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/n, "bytes/proto")
		runtime.KeepAlive(protos)
	}
}
