package cachebridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func newTestCache(t testing.TB, o Options) (*Cache, *Store, *fakeClock) {
	t.Helper()
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	s := NewStore(StoreOptions{Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(), Now: clock.Now})
	t.Cleanup(s.Close)
	c, err := s.Module("id", "mod").Cache("mod.lua:3", o)
	if err != nil {
		t.Fatal(err)
	}
	return c, s, clock
}

// compute runs the Load protocol as a caller would.
func compute(c *Cache, key string, fn func() (any, error)) (any, error) {
	if v, ok := c.Get(key); ok {
		return v, nil
	}
	leader, wait, complete := c.Load(key)
	if !leader {
		return wait(context.Background())
	}
	v, err := fn()
	complete(v, err)
	return v, err
}

func TestSingleFlight(t *testing.T) {
	c, _, _ := newTestCache(t, Options{})
	var runs atomic.Int32
	var wg sync.WaitGroup
	release := make(chan struct{})
	results := make(chan any, 100)
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, _ := compute(c, "k", func() (any, error) { runs.Add(1); <-release; return "v", nil })
			results <- v
		}()
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	close(results)
	if runs.Load() != 1 {
		t.Fatalf("function ran %d times for 100 concurrent misses", runs.Load())
	}
	for v := range results {
		if v != "v" {
			t.Fatalf("a waiter got %v", v)
		}
	}
}

func TestErrorsAreNotCachedAndReachWaiters(t *testing.T) {
	c, _, _ := newTestCache(t, Options{})
	boom := errors.New("boom")
	leader, _, complete := c.Load("k")
	_, wait, _ := c.Load("k")
	if !leader || wait == nil {
		t.Fatal("expected a leader and a waiter")
	}
	complete(nil, boom)
	if _, err := wait(context.Background()); !errors.Is(err, boom) {
		t.Fatalf("waiter got %v", err)
	}
	if _, ok := c.Get("k"); ok {
		t.Fatal("a failure was cached")
	}
	v, err := compute(c, "k", func() (any, error) { return "ok", nil })
	if err != nil || v != "ok" {
		t.Fatal(v, err)
	}
}

func TestInvalidateDuringLoad(t *testing.T) {
	c, _, _ := newTestCache(t, Options{})
	leader, _, complete := c.Load("k")
	if !leader {
		t.Fatal("not leader")
	}
	c.Invalidate("k")
	complete("stale", nil)
	if _, ok := c.Get("k"); ok {
		t.Fatal("a value computed across an invalidation was stored")
	}
	// A cached nil is a value.
	c.Prefill("n", nil)
	if v, ok := c.Get("n"); !ok || v != nil {
		t.Fatal("cached nil is not a hit")
	}
}

func TestTTLAndEviction(t *testing.T) {
	c, _, clock := newTestCache(t, Options{TTL: time.Minute, MaxEntries: 10})
	c.Prefill("a", 1)
	clock.Add(30 * time.Second)
	if _, ok := c.Get("a"); !ok {
		t.Fatal("expired early")
	}
	clock.Add(31 * time.Second)
	if _, ok := c.Get("a"); ok {
		t.Fatal("did not expire")
	}
	small, _, _ := newTestCache(t, Options{MaxEntries: 5})
	for i := 0; i < 50; i++ {
		small.Prefill(fmt.Sprint(i), i)
	}
	small.lru.CleanUp()
	if n := small.Len(); n > 5 {
		t.Fatalf("%d entries with max 5", n)
	}
	// otter reports deletions asynchronously: the counter catches up.
	eventually(t, "45 evictions to be counted", func() bool { return testutil.ToFloat64(small.metrics.evictions) >= 45 })
}

// redisServer runs a real redis-server on a free loopback port.
type redisServer struct {
	t    *testing.T
	port int
	cmd  *exec.Cmd
}

func startRedis(t *testing.T) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server is not installed (.ci/run installs it)")
		}
		t.Skip("redis-server is not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r := &redisServer{t: t, port: port}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *redisServer) addr() string { return fmt.Sprintf("127.0.0.1:%d", r.port) }

func (r *redisServer) start() {
	r.cmd = exec.Command("redis-server", "--port", fmt.Sprint(r.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", r.addr()); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatal("redis-server did not start")
}

func (r *redisServer) stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if f() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestRedisFanOutSurvivesRestart(t *testing.T) {
	redis := startRedis(t)
	stores := make([]*Store, 2)
	caches := make([]*Cache, 2)
	for i := range stores {
		reg := prometheus.NewRegistry()
		stores[i] = NewStore(StoreOptions{Logger: slog.New(slog.DiscardHandler), Registry: reg})
		defer stores[i].Close()
		if err := stores[i].Configure(&RedisOptions{Addr: redis.addr(), Channel: "test"}); err != nil {
			t.Fatal(err)
		}
		c, err := stores[i].Module(fmt.Sprint("v", i), "departments.lua").Cache("/srv/a/departments.lua:12", Options{})
		if err != nil {
			t.Fatal(err)
		}
		caches[i] = c
	}
	subscribed := func() bool {
		n := 0
		for _, s := range stores {
			s.mu.Lock()
			f := s.redis
			s.mu.Unlock()
			if f != nil && f.client.PubSubNumSub(context.Background(), "test").Val()["test"] >= 2 {
				n++
			}
		}
		return n == 2
	}
	eventually(t, "both stores to subscribe", subscribed)
	roundTrip := func(key string) {
		t.Helper()
		caches[0].Prefill(key, "old")
		caches[1].Prefill(key, "old")
		if err := caches[0].InvalidateEverywhere(context.Background(), key); err != nil {
			t.Fatal(err)
		}
		if _, ok := caches[0].Get(key); ok {
			t.Fatal("not invalidated locally")
		}
		eventually(t, "the other process to invalidate "+key, func() bool { _, ok := caches[1].Get(key); return !ok })
	}
	roundTrip("salt")

	redis.stop()
	// While Redis is down: local invalidation works, the failure is counted.
	caches[0].Prefill("x", 1)
	if err := caches[0].InvalidateEverywhere(context.Background(), "x"); err != nil {
		t.Fatal(err)
	}
	if _, ok := caches[0].Get("x"); ok {
		t.Fatal("local invalidation failed while Redis is down")
	}
	if testutil.ToFloat64(stores[0].metrics.fanoutErrors.WithLabelValues("publish")) < 1 {
		t.Error("publish failure not counted")
	}
	// The other process holds a value whose invalidation was just lost.
	caches[1].Prefill("stale", "old")
	caches[0].Prefill("stale", "old")
	if err := caches[0].InvalidateEverywhere(context.Background(), "stale"); err != nil {
		t.Fatal(err)
	}
	redis.start()
	eventually(t, "both stores to resubscribe", subscribed)
	// After the reconnection every cache is cleared: the stale value too.
	eventually(t, "the missed invalidation to be made good", func() bool { _, ok := caches[1].Get("stale"); return !ok })
	for i, s := range stores {
		eventually(t, fmt.Sprint("store ", i, " to count its resync"), func() bool { return testutil.ToFloat64(s.metrics.resyncs) >= 1 })
	}
	roundTrip("pepper")
}
