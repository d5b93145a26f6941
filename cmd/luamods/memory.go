package main

import (
	"bufio"
	"context"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"luamods/engine"
)

// memoryGOGC is the GC target below the memory limit: collecting less
// often while far from it, as the limit makes the collector work hard near
// it.
const memoryGOGC = 400

// governMemory applies memory_limit (a quarter of the machine's memory when
// unset) as the Go soft limit and starts the engine's governor, which fails
// the calls in flight when the heap reaches it.
func governMemory(ctx context.Context, eng *engine.Engine, configured int64, log *slog.Logger) {
	limit, source := configured, "memory_limit"
	if limit <= 0 {
		limit, source = defaultMemoryLimit(), "a quarter of the machine's memory"
	}
	debug.SetMemoryLimit(limit)
	debug.SetGCPercent(memoryGOGC)
	log.Info("memory limit", "bytes", limit, "MiB", limit>>20, "from", source)
	go eng.GovernMemory(ctx, limit, 20*time.Millisecond)
}

// releaseLoadGarbage collects what loading or reloading modules left
// behind (compiler output, the replaced generation's states) and returns
// the freed memory to the operating system at once. Under memoryGOGC the
// collector would otherwise wait for the heap to grow 5× before it runs,
// and the runtime returns freed pages only gradually: an idle daemon would
// keep the peak of its last load as its resident set.
func releaseLoadGarbage() { debug.FreeOSMemory() }

// defaultMemoryLimit is a quarter of the machine's memory, or of the
// cgroup's limit when that is lower; 1 GiB when neither can be read.
func defaultMemoryLimit() int64 {
	total := memTotal()
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && (total == 0 || n < total) {
			total = n
		}
	}
	if total <= 0 {
		return 1 << 30
	}
	return total / 4
}

// memTotal is MemTotal from /proc/meminfo in bytes, 0 if unknown.
func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(fields[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}
