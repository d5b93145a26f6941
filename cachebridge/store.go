package cachebridge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// StoreOptions configure a Store.
type StoreOptions struct {
	Logger   *slog.Logger
	Registry *prometheus.Registry // nil: metrics are not exported
	Now      func() time.Time     // nil: time.Now
}

// RedisOptions configure the invalidation fan-out.
type RedisOptions struct {
	Addr     string
	Password string
	DB       int
	Channel  string
}

// Store holds every module's caches of one engine, and the Redis fan-out.
type Store struct {
	log     *slog.Logger
	now     func() time.Time
	metrics *storeMetrics
	origin  string // this process's id in fan-out messages

	mu      sync.Mutex
	modules map[string]*ModuleCaches
	redis   *fanout
}

// NewStore returns an empty store.
func NewStore(o StoreOptions) *Store {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	return &Store{log: o.Logger, now: o.Now, metrics: newStoreMetrics(o.Registry), origin: hex.EncodeToString(id[:]), modules: map[string]*ModuleCaches{}}
}

// ModuleCaches are the caches of one module version.
type ModuleCaches struct {
	store *Store
	name  string
	mu    sync.Mutex
	fns   map[string]*Cache
}

// Module returns the caches of the module version identity (its name,
// script hash and config), creating them on first use. name labels metrics
// and fan-out messages.
func (s *Store) Module(identity, name string) *ModuleCaches {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, ok := s.modules[identity]; ok {
		return m
	}
	m := &ModuleCaches{store: s, name: name, fns: map[string]*Cache{}}
	s.modules[identity] = m
	return m
}

// Retain drops the caches of every module version not in keep (after a
// reload: changed and removed modules start empty).
func (s *Store) Retain(keep map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, m := range s.modules {
		if !keep[id] {
			m.close()
			delete(s.modules, id)
		}
	}
}

// Cache returns the cache of the function at definition site fn ("file:line").
func (m *ModuleCaches) Cache(fn string, o Options) (*Cache, error) {
	name := m.name + "/" + filepath.Base(fn)
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.fns[name]; ok {
		return c, nil
	}
	c, err := newCache(m.store, name, o)
	if err != nil {
		return nil, fmt.Errorf("cache %s: %w", name, err)
	}
	m.fns[name] = c
	return c, nil
}

// Caches returns the module's caches by name.
func (m *ModuleCaches) Caches() map[string]*Cache {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]*Cache, len(m.fns))
	for k, v := range m.fns {
		out[k] = v
	}
	return out
}

func (m *ModuleCaches) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.fns {
		c.close()
	}
}

// Configure starts (or stops, with nil) the Redis fan-out. A Redis that is
// down is not an error: the subscriber keeps reconnecting.
func (s *Store) Configure(o *RedisOptions) error {
	s.mu.Lock()
	old := s.redis
	if old != nil && o != nil && old.opts == *o {
		s.mu.Unlock()
		return nil
	}
	s.redis = nil
	s.mu.Unlock()
	if old != nil {
		old.close()
	}
	if o == nil {
		return nil
	}
	f := newFanout(s, *o)
	s.mu.Lock()
	s.redis = f
	s.mu.Unlock()
	return nil
}

// Close stops the fan-out and every cache.
func (s *Store) Close() {
	_ = s.Configure(nil)
	s.Retain(nil)
}

var errNoFanout = errors.New("cachebridge: no fan-out configured")

type message struct {
	Origin string `json:"origin"`
	Cache  string `json:"cache"`
	Key    string `json:"key"`
}

func (s *Store) publish(ctx context.Context, cache, key string) error {
	s.mu.Lock()
	f := s.redis
	s.mu.Unlock()
	if f == nil {
		return errNoFanout
	}
	return f.publish(ctx, message{Origin: s.origin, Cache: cache, Key: key})
}

// resyncAll is the Cache of a message that clears every cache: a process
// that was cut off from Redis sends it when it reconnects, as the
// invalidations it published meanwhile were lost.
const resyncAll = "*"

// receive applies an invalidation from another process.
func (s *Store) receive(m message) {
	if m.Origin == s.origin {
		return
	}
	if m.Cache == resyncAll {
		s.resync("another process reconnected to Redis")
		return
	}
	s.mu.Lock()
	var targets []*Cache
	for _, mod := range s.modules {
		mod.mu.Lock()
		if c, ok := mod.fns[m.Cache]; ok {
			targets = append(targets, c)
		}
		mod.mu.Unlock()
	}
	s.mu.Unlock()
	for _, c := range targets {
		c.invalidate(m.Key)
		c.metrics.remoteInval.Inc()
	}
}

// resync clears every cache: invalidations may have been missed (Synapse's
// replication clears its caches on reconnect for the same reason).
func (s *Store) resync(why string) {
	s.mu.Lock()
	var all []*Cache
	for _, mod := range s.modules {
		mod.mu.Lock()
		for _, c := range mod.fns {
			all = append(all, c)
		}
		mod.mu.Unlock()
	}
	s.mu.Unlock()
	for _, c := range all {
		c.InvalidateAll()
	}
	s.metrics.resyncs.Inc()
	s.log.Warn("cache invalidation fan-out: cleared every cache", "reason", why, "caches", len(all))
}

// fanout publishes and receives invalidations on a Redis channel.
type fanout struct {
	opts   RedisOptions
	client *redis.Client
	cancel context.CancelFunc
	done   chan struct{}
	store  *Store

	mu  sync.Mutex
	sub *redis.PubSub // the live subscription; closing it ends a blocked read
}

func newFanout(s *Store, o RedisOptions) *fanout {
	client := redis.NewClient(&redis.Options{Addr: o.Addr, Password: o.Password, DB: o.DB,
		DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: time.Second, MaxRetries: 1})
	ctx, cancel := context.WithCancel(context.Background())
	f := &fanout{opts: o, client: client, cancel: cancel, done: make(chan struct{}), store: s}
	go f.subscribe(ctx)
	return f
}

// subscribe receives invalidations until closed, reconnecting after errors.
func (f *fanout) subscribe(ctx context.Context) {
	defer close(f.done)
	reconnect := false // set once subscribed: every later subscription is a reconnection
	for ctx.Err() == nil {
		sub := f.client.Subscribe(ctx, f.opts.Channel)
		f.mu.Lock()
		f.sub = sub
		f.mu.Unlock()
		if ctx.Err() != nil {
			_ = sub.Close()
			return
		}
		if _, err := sub.Receive(ctx); err != nil {
			_ = sub.Close()
			if ctx.Err() == nil {
				f.store.metrics.fanoutErrors.WithLabelValues("subscribe").Inc()
				f.store.log.Warn("cache invalidation fan-out: cannot subscribe to Redis; retrying", "addr", f.opts.Addr, "error", err)
				select {
				case <-time.After(500 * time.Millisecond):
				case <-ctx.Done():
				}
			}
			continue
		}
		f.store.log.Info("cache invalidation fan-out: subscribed", "addr", f.opts.Addr, "channel", f.opts.Channel)
		if reconnect {
			// Invalidations were missed both ways while cut off: clear ours,
			// and tell the others to clear theirs.
			f.store.resync("reconnected to Redis")
			if err := f.publish(ctx, message{Origin: f.store.origin, Cache: resyncAll}); err != nil {
				f.store.log.Warn("cache invalidation fan-out: cannot ask the other processes to resync", "error", err)
			}
		}
		reconnect = true
		f.readLoop(ctx, sub)
		_ = sub.Close()
	}
}

func (f *fanout) readLoop(ctx context.Context, sub *redis.PubSub) {
	for {
		msg, err := sub.ReceiveMessage(ctx)
		if err != nil {
			if ctx.Err() == nil {
				f.store.metrics.fanoutErrors.WithLabelValues("receive").Inc()
				f.store.log.Warn("cache invalidation fan-out: lost Redis; reconnecting", "error", err)
			}
			return
		}
		var m message
		if err := json.Unmarshal([]byte(msg.Payload), &m); err != nil {
			f.store.log.Warn("cache invalidation fan-out: ignoring a malformed message", "error", err)
			continue
		}
		f.store.receive(m)
	}
}

func (f *fanout) publish(ctx context.Context, m message) error {
	b, _ := json.Marshal(m)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := f.client.Publish(ctx, f.opts.Channel, b).Err(); err != nil {
		f.store.metrics.fanoutErrors.WithLabelValues("publish").Inc()
		return err
	}
	return nil
}

func (f *fanout) close() {
	f.cancel()
	f.mu.Lock()
	if f.sub != nil {
		_ = f.sub.Close() // a read blocked in ReceiveMessage ignores ctx
	}
	f.mu.Unlock()
	<-f.done
	_ = f.client.Close()
}

type storeMetrics struct {
	hits, misses, evictions, invalidations *prometheus.CounterVec
	size, loading                          *prometheus.GaugeVec
	fanoutErrors                           *prometheus.CounterVec
	resyncs                                prometheus.Counter
}

func newStoreMetrics(reg *prometheus.Registry) *storeMetrics {
	m := &storeMetrics{
		hits:          prometheus.NewCounterVec(prometheus.CounterOpts{Name: "luamods_cache_hits_total", Help: "Cached function calls answered from the cache."}, []string{"cache"}),
		misses:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "luamods_cache_misses_total", Help: "Cached function calls not in the cache."}, []string{"cache"}),
		evictions:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "luamods_cache_evictions_total", Help: "Entries dropped by size or TTL."}, []string{"cache"}),
		invalidations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "luamods_cache_invalidations_total", Help: "Invalidations by origin."}, []string{"cache", "origin"}),
		size:          prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "luamods_cache_size", Help: "Entries stored."}, []string{"cache"}),
		loading:       prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "luamods_cache_loads_in_flight", Help: "Computations in progress."}, []string{"cache"}),
		fanoutErrors:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "luamods_cache_fanout_errors_total", Help: "Redis fan-out failures."}, []string{"op"}),
		resyncs:       prometheus.NewCounter(prometheus.CounterOpts{Name: "luamods_cache_resyncs_total", Help: "Times every cache was cleared after a Redis reconnection (ours or another process's)."}),
	}
	if reg != nil {
		reg.MustRegister(m.hits, m.misses, m.evictions, m.invalidations, m.size, m.loading, m.fanoutErrors, m.resyncs)
	}
	return m
}

func (m *storeMetrics) forCache(name string) cacheMetrics {
	return cacheMetrics{
		hits: m.hits.WithLabelValues(name), misses: m.misses.WithLabelValues(name),
		evictions: m.evictions.WithLabelValues(name), size: m.size.WithLabelValues(name),
		loading: m.loading.WithLabelValues(name), localInval: m.invalidations.WithLabelValues(name, "local"),
		remoteInval: m.invalidations.WithLabelValues(name, "remote"),
	}
}
