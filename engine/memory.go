package engine

import (
	"context"
	"fmt"
	"runtime/metrics"
	"time"
)

// GovernMemory watches the heap every interval until ctx ends. When the
// bytes in heap objects reach limit (the process's memory_limit, which the
// Go runtime already collects hard to stay under), every call in flight in
// the serving modules fails with "memory limit exceeded" naming its module,
// and their states are retired and rebuilt: whatever they built is let go.
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
		metrics.Read(sample)
		heap := int64(sample[0].Value.Uint64())
		if heap < limit {
			continue
		}
		e.failBusy(heap, limit)
	}
}

// failBusy fails the calls in flight of every module state that has any.
func (e *Engine) failBusy(heap, limit int64) {
	gen, release := e.Acquire()
	defer release()
	for _, m := range gen.Modules {
		for _, s := range m.States() {
			if s.Inflight() == 0 && s.Active() == 0 {
				continue
			}
			e.metrics.MemoryKills.WithLabelValues(m.Name).Inc()
			e.log.Error("memory limit exceeded: failing the module's calls in flight", "module", m.Name,
				"heap_bytes", heap, "memory_limit", limit)
			s.FailCalls(fmt.Errorf("memory limit exceeded (module %s, heap %d MiB, memory_limit %d MiB)", m.Name, heap>>20, limit>>20))
		}
	}
}
