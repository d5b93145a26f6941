package main

import (
	"log/slog"
	"os"
	"runtime/pprof"
)

// cpuProfile starts a CPU profile of the process when LUAMODS_CPUPROFILE
// names a file (tools/bench/compare.sh uses it); the returned function
// stops it and writes the file. Read it with `go tool pprof -top`.
func cpuProfile(log *slog.Logger) (stop func()) {
	path := os.Getenv("LUAMODS_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		log.Error("CPU profile not written", "error", err.Error())
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		log.Error("CPU profile not written", "error", err.Error())
		_ = f.Close()
		return func() {}
	}
	log.Info("writing a CPU profile until shutdown", "file", path)
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}
}
