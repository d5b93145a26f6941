package engine

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestCloseLeavesNothingRunning loads modules with timers, waiting calls,
// caches and several instances, reloads, and closes: no goroutine of
// luamods may outlive Close.
func TestCloseLeavesNothingRunning(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	eng, _, err := startEngine(t, map[string]string{
		"luamods.yaml": "modules:\n  - module: m1.lua\n    instances: 2\n    config: {delay: 0.01}\n  - module: app.lua\n",
		"m1.lua":       cachedModule,
		"app.lua":      versioned("v1"),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cacheCall(t, eng, "get", "k")
	go func() { _, _ = eng.Invoke(ctx, "test.run", "slow") }() // a call still waiting at Close
	time.Sleep(30 * time.Millisecond)
	rewrite(t, eng, "app.lua", versioned("v2"))
	if _, err := eng.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	eng.Close()
	time.Sleep(50 * time.Millisecond)
}
