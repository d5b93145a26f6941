package cachebridge

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// Options configure one cache.
type Options struct {
	MaxEntries int           // LRU capacity; default 1000
	TTL        time.Duration // entry lifetime after it is stored; 0: none
}

// entry wraps a value so that a cached nil is a value, not a miss.
type entry struct{ v any }

// flight is a computation in progress.
type flight struct {
	done        chan struct{}
	val         any
	err         error
	invalidated bool // its key was invalidated while it ran: do not store
}

// Cache is one memoized function's store. Safe for concurrent use.
type Cache struct {
	name    string // public name: module + "/" + function
	lru     *otter.Cache[string, entry]
	store   *Store
	metrics cacheMetrics

	mu      sync.Mutex
	flights map[string]*flight
}

type cacheMetrics struct {
	hits, misses, evictions prometheus.Counter
	size, loading           prometheus.Gauge
	localInval, remoteInval prometheus.Counter
}

func newCache(s *Store, name string, o Options) (*Cache, error) {
	if o.MaxEntries <= 0 {
		o.MaxEntries = 1000
	}
	c := &Cache{name: name, store: s, flights: map[string]*flight{}, metrics: s.metrics.forCache(name)}
	opts := &otter.Options[string, entry]{
		MaximumSize: o.MaxEntries,
		Clock:       clockFunc(s.now),
		OnDeletion: func(e otter.DeletionEvent[string, entry]) {
			if e.WasEvicted() {
				c.metrics.evictions.Inc()
			}
		},
	}
	if o.TTL > 0 {
		opts.ExpiryCalculator = otter.ExpiryWriting[string, entry](o.TTL)
	}
	lru, err := otter.New(opts)
	if err != nil {
		return nil, err
	}
	c.lru = lru
	return c, nil
}

// Name is the cache's public name, which invalidations are sent under.
func (c *Cache) Name() string { return c.name }

// Get returns the stored value of key.
func (c *Cache) Get(key string) (any, bool) {
	e, ok := c.lru.GetIfPresent(key)
	if ok {
		c.metrics.hits.Inc()
		return e.v, true
	}
	c.metrics.misses.Inc()
	return nil, false
}

// Len returns the number of stored entries.
func (c *Cache) Len() int { return c.lru.EstimatedSize() }

// Load claims the computation of key: the leader (leader true) computes and
// must call complete once; the others call wait, which returns the leader's
// outcome, or the stored value if it arrived meanwhile.
func (c *Cache) Load(key string) (leader bool, wait func(context.Context) (any, error), complete func(any, error)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := c.flights[key]; ok {
		return false, f.wait, nil
	}
	if e, ok := c.lru.GetIfPresent(key); ok {
		return false, func(context.Context) (any, error) { return e.v, nil }, nil
	}
	f := &flight{done: make(chan struct{})}
	c.flights[key] = f
	c.metrics.loading.Inc()
	var once sync.Once
	return true, nil, func(v any, err error) {
		once.Do(func() { c.complete(key, f, v, err) })
	}
}

func (c *Cache) complete(key string, f *flight, v any, err error) {
	c.mu.Lock()
	if c.flights[key] == f {
		delete(c.flights, key)
	}
	if err == nil && !f.invalidated {
		c.lru.Set(key, entry{v})
		c.metrics.size.Set(float64(c.lru.EstimatedSize()))
	}
	c.mu.Unlock()
	c.metrics.loading.Dec()
	f.val, f.err = v, err
	close(f.done)
}

func (f *flight) wait(ctx context.Context) (any, error) {
	select {
	case <-f.done:
		return f.val, f.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Prefill stores value under key, as if computed.
func (c *Cache) Prefill(key string, value any) {
	c.lru.Set(key, entry{value})
	c.metrics.size.Set(float64(c.lru.EstimatedSize()))
}

// Invalidate drops key, and makes a computation of it in flight return its
// result without storing it.
func (c *Cache) Invalidate(key string) {
	c.invalidate(key)
	c.metrics.localInval.Inc()
}

func (c *Cache) invalidate(key string) {
	c.mu.Lock()
	if f, ok := c.flights[key]; ok {
		f.invalidated = true
		delete(c.flights, key)
	}
	c.lru.Invalidate(key)
	c.mu.Unlock()
	c.metrics.size.Set(float64(c.lru.EstimatedSize()))
}

// InvalidateAll drops every key.
func (c *Cache) InvalidateAll() {
	c.mu.Lock()
	for k, f := range c.flights {
		f.invalidated = true
		delete(c.flights, k)
	}
	c.lru.InvalidateAll()
	c.mu.Unlock()
	c.metrics.size.Set(0)
	c.metrics.localInval.Inc()
}

// InvalidateEverywhere invalidates key here, then tells every process that
// shares the Redis channel. A failure to publish is logged and counted, not
// returned: local invalidation has happened either way.
func (c *Cache) InvalidateEverywhere(ctx context.Context, key string) error {
	c.Invalidate(key)
	if err := c.store.publish(ctx, c.name, key); err != nil && !errors.Is(err, errNoFanout) {
		c.store.log.Warn("could not send a cache invalidation to other processes", "cache", c.name, "error", err)
	}
	return nil
}

func (c *Cache) close() { c.lru.StopAllGoroutines() }

// clockFunc adapts a time source to otter's Clock: entries expire on
// access, without a ticking goroutine.
type clockFunc func() time.Time

func (f clockFunc) NowNano() int64                      { return f().UnixNano() }
func (f clockFunc) Tick(time.Duration) <-chan time.Time { return nil }
