package engine

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"time"

	"luamods/luaapi"
)

// GovernMemory watches the heap every interval until ctx ends. When the
// bytes in heap objects reach limit (the process's memory_limit, which the
// Go runtime already collects hard to stay under), every call in flight in
// the serving modules fails with "memory limit exceeded" naming its module,
// and their states are retired and rebuilt: whatever they built is let go.
//
// What counts is the live heap: over the limit, with a call in flight, the
// governor collects before it judges, so that the garbage a stopped state
// left (collected only when something allocates) does not stop the next
// call, or the fresh state's init, too.
func (e *Engine) GovernMemory(ctx context.Context, limit int64, interval time.Duration) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		if heap := readHeap(sample); heap < limit || !e.busy() {
			continue
		}
		runtime.GC()
		if heap := readHeap(sample); heap >= limit {
			e.failBusy(heap, limit)
		}
	}
}

// readHeap reads the bytes in heap objects into sample and returns them.
func readHeap(sample []metrics.Sample) int64 {
	metrics.Read(sample)
	return int64(sample[0].Value.Uint64())
}

// busy reports whether any serving module has a call in flight.
func (e *Engine) busy() bool {
	busy := false
	e.eachBusy(func(*Module, *luaapi.State) { busy = true })
	return busy
}

// failBusy fails the calls in flight of every module state that has any.
func (e *Engine) failBusy(heap, limit int64) {
	e.eachBusy(func(m *Module, s *luaapi.State) {
		e.metrics.MemoryKills.WithLabelValues(m.Name).Inc()
		e.log.Error("memory limit exceeded: failing the module's calls in flight", "module", m.Name,
			"heap_bytes", heap, "memory_limit", limit)
		s.FailCalls(fmt.Errorf("memory limit exceeded (module %s, heap %d MiB, memory_limit %d MiB)", m.Name, heap>>20, limit>>20))
	})
}

// eachBusy calls f with every state of a serving module that has a call in
// flight.
func (e *Engine) eachBusy(f func(*Module, *luaapi.State)) {
	gen, release := e.Acquire()
	defer release()
	for _, m := range gen.Modules {
		for _, s := range m.States() {
			if s.Inflight() != 0 || s.Active() != 0 {
				f(m, s)
			}
		}
	}
}
