package engine

import (
	"context"
	"sync/atomic"
	"time"

	"luamods/luaapi"
	"luamods/storage"
)

// dataSet is the database and the store backend of a configuration.
type dataSet struct {
	db      *storage.DB
	kv      storage.KV
	backend string                // store.backend
	redis   *storage.RedisOptions // the store's Redis, for the redis backend
}

// dataRef is the dataSet a module uses; a reload that changes the database
// or the store points the modules it keeps at the new one.
type dataRef struct{ atomic.Pointer[dataSet] }

// openData returns the database and store cfg names: the current ones when
// unchanged, else newly opened ones. A database that cannot be opened is an
// error naming it.
func (e *Engine) openData(ctx context.Context, cfg *Config) (*dataSet, error) {
	opts := cfg.Database
	if cfg.DefaultDB && e.opts.DefaultDatabase != "" {
		opts.Path = e.opts.DefaultDatabase
	}
	cur := e.data
	next := &dataSet{backend: cfg.StoreBackend, redis: cfg.RedisServer}
	if cur != nil && cur.db.Options() == withSlow(opts) {
		next.db = cur.db
	} else {
		db, err := storage.Open(ctx, opts, e.log, e.dbMetrics)
		if err != nil {
			return nil, &ConfigError{File: cfg.Path, Path: []string{"database"}, Msg: err.Error()}
		}
		next.db = db
	}
	if cur != nil && cur.db == next.db && cur.backend == next.backend && sameRedis(cur.redis, next.redis) {
		next.kv = cur.kv
		return next, nil
	}
	if next.backend == "redis" {
		next.kv = storage.NewRedisKV(*next.redis)
	} else {
		next.kv = storage.NewSQLKV(next.db, e.opts.Clock.Now, true, e.log)
	}
	return next, nil
}

// withSlow is o as storage.Open records it.
func withSlow(o storage.Options) storage.Options {
	if o.Slow <= 0 {
		o.Slow = storage.DefaultSlowInteraction
	}
	if o.Engine == "" {
		o.Engine = storage.SQLite
	}
	return o
}

func sameRedis(a, b *storage.RedisOptions) bool {
	return a == b || a != nil && b != nil && *a == *b
}

// closeUnused closes what of d the engine's current dataSet does not share.
// The caller holds reloadMu.
func (e *Engine) closeUnused(d *dataSet) { unshared(d, e.data)() }

// unshared returns a function that closes what of d keep does not share.
func unshared(d, keep *dataSet) func() {
	if d == nil || d == keep {
		return func() {}
	}
	var kv storage.KV
	var db *storage.DB
	if keep == nil || d.kv != keep.kv {
		kv = d.kv
	}
	if keep == nil || d.db != keep.db {
		db = d.db
	}
	return func() {
		if kv != nil {
			kv.Close()
		}
		if db != nil {
			db.Close()
		}
	}
}

// adoptData makes d the engine's dataSet and points every module of gen at
// it. It returns what closes the parts of the previous one d does not
// share: call it once the previous generation has retired.
func (e *Engine) adoptData(d *dataSet, gen *Generation) (release func()) {
	old := e.data
	e.data = d
	for _, m := range gen.Modules {
		m.data.Store(d)
	}
	return unshared(old, d)
}

// moduleDatabase is a module's api.run_db_interaction database.
type moduleDatabase struct {
	ref    *dataRef
	module string
}

func (d moduleDatabase) Begin(ctx context.Context, desc string) (luaapi.Transaction, error) {
	tx, err := d.ref.Load().db.Begin(ctx, d.module, desc)
	if err != nil {
		return nil, err
	}
	return tx, nil
}

func (d moduleDatabase) Retryable(err error) bool { return d.ref.Load().db.Retryable(err) }

// moduleStore is a module's api.store: the store backend in the module's
// namespace (its name).
type moduleStore struct {
	ref *dataRef
	ns  string
}

func (s moduleStore) kv() storage.KV { return s.ref.Load().kv }

func (s moduleStore) Get(ctx context.Context, key string) ([]byte, bool, error) {
	return s.kv().Get(ctx, s.ns, key)
}

func (s moduleStore) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return s.kv().Set(ctx, s.ns, key, value, ttl)
}

func (s moduleStore) Add(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	return s.kv().Add(ctx, s.ns, key, value, ttl)
}

func (s moduleStore) Incr(ctx context.Context, key string, n int64, ttl time.Duration) (int64, error) {
	return s.kv().Incr(ctx, s.ns, key, n, ttl)
}

func (s moduleStore) Delete(ctx context.Context, key string) (bool, error) {
	return s.kv().Delete(ctx, s.ns, key)
}

func (s moduleStore) Keys(ctx context.Context, prefix string, limit int, cursor string) ([]string, string, error) {
	return s.kv().Keys(ctx, s.ns, prefix, limit, cursor)
}
