package luaapi

import (
	"context"
	"errors"
	"testing"
	"time"
)

// BenchmarkAnswerPastDeadline is how long after its deadline the caller of
// a call that would run much longer gets its answer: a Lua loop, a
// backtracking pattern, a sort with a Lua comparator and pcall recursion,
// each under a 20 ms deadline. past-ms is the mean, max-past-ms the worst
// of the run (issue 11's bound: 100 ms, callGrace); retired-% the share of
// calls after which the state was retired as stuck in Go (a fresh one
// replaces it, as the engine does).
func BenchmarkAnswerPastDeadline(b *testing.B) {
	for _, bc := range []struct{ name, body string }{
		{"spin", "while true do end"},
		{"find_backtrack", `return string.find(string.rep("a", 30000), ".-.-b")`},
		{"sort_comparator", `local t = {} for i = 1, 1e6 do t[i] = -i end table.sort(t, function(a, b) return a > b end)`},
		{"pcall_recursion", `local function f() pcall(f) pcall(f) end f()`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			const timeout = 20 * time.Millisecond
			s, _ := newTestStateTimeout(b, evalModule(bc.body), nil, timeout)
			var total, worst time.Duration
			retired := 0
			for i := 0; i < b.N; i++ {
				if s.Retired() {
					b.StopTimer()
					retired++
					s, _ = newTestStateTimeout(b, evalModule(bc.body), nil, timeout)
					b.StartTimer()
				}
				start := time.Now()
				_, err := s.Call(context.Background(), "cb:spam_checker.run")
				past := time.Since(start) - timeout
				if err == nil || errors.Is(err, ErrRetired) {
					b.Fatalf("the call ended with %v, want its deadline", err)
				}
				total += past
				worst = max(worst, past)
			}
			b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "past-ms")
			b.ReportMetric(float64(worst.Microseconds())/1000, "max-past-ms")
			b.ReportMetric(100*float64(retired)/float64(b.N), "retired-%")
		})
	}
}
