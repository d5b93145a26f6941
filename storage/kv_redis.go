package storage

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOptions name a Redis server, in the shape of Synapse's `redis:`.
type RedisOptions struct {
	Host     string
	Port     int
	DB       int
	Password string
}

// Addr is host:port.
func (o RedisOptions) Addr() string { return fmt.Sprintf("%s:%d", o.Host, o.Port) }

// RedisKV is a KV in Redis: native expiry, SET NX for Add and a script for
// Incr, so both are atomic across processes.
type RedisKV struct {
	client *redis.Client
	opts   RedisOptions
}

// NewRedisKV connects to Redis (lazily: a Redis that is down fails the
// calls made meanwhile, and they work again once it is back).
func NewRedisKV(o RedisOptions) *RedisKV {
	client := redis.NewClient(&redis.Options{Addr: o.Addr(), Password: o.Password, DB: o.DB,
		DialTimeout: 2 * time.Second, ContextTimeoutEnabled: true, MaxRetries: 1})
	return &RedisKV{client: client, opts: o}
}

// Close closes the connections.
func (kv *RedisKV) Close() { _ = kv.client.Close() }

// redisKeyPrefix starts every key: "luamods:store:<len(ns)>:<ns>:".
func redisKeyPrefix(ns string) string {
	return "luamods:store:" + strconv.Itoa(len(ns)) + ":" + ns + ":"
}

func (kv *RedisKV) wrap(err error) error {
	if err == nil || errors.Is(err, redis.Nil) {
		return err
	}
	return fmt.Errorf("redis %s: %w", kv.opts.Addr(), err)
}

// Get implements KV.
func (kv *RedisKV) Get(ctx context.Context, ns, key string) ([]byte, bool, error) {
	v, err := kv.client.Get(ctx, redisKeyPrefix(ns)+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, kv.wrap(err)
	}
	return v, true, nil
}

// Set implements KV.
func (kv *RedisKV) Set(ctx context.Context, ns, key string, value []byte, ttl time.Duration) error {
	return kv.wrap(kv.client.Set(ctx, redisKeyPrefix(ns)+key, value, redisTTL(ttl)).Err())
}

// redisTTL keeps a positive ttl at least a millisecond (0 means none).
func redisTTL(ttl time.Duration) time.Duration {
	if ttl > 0 && ttl < time.Millisecond {
		return time.Millisecond
	}
	return max(ttl, 0)
}

// Add implements KV.
func (kv *RedisKV) Add(ctx context.Context, ns, key string, value []byte, ttl time.Duration) (bool, error) {
	ok, err := kv.client.SetNX(ctx, redisKeyPrefix(ns)+key, value, redisTTL(ttl)).Result()
	return ok, kv.wrap(err)
}

// incrScript creates an absent key with its expiry, or adds to it keeping
// its expiry.
var incrScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  if tonumber(ARGV[2]) > 0 then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  else
    redis.call('SET', KEYS[1], ARGV[1])
  end
  return tonumber(ARGV[1])
end
return redis.call('INCRBY', KEYS[1], ARGV[1])
`)

// Incr implements KV.
func (kv *RedisKV) Incr(ctx context.Context, ns, key string, n int64, ttl time.Duration) (int64, error) {
	v, err := incrScript.Run(ctx, kv.client, []string{redisKeyPrefix(ns) + key}, n, redisTTL(ttl).Milliseconds()).Int64()
	if err != nil && strings.Contains(err.Error(), "not an integer") {
		return 0, ErrNotInteger
	}
	return v, kv.wrap(err)
}

// Delete implements KV.
func (kv *RedisKV) Delete(ctx context.Context, ns, key string) (bool, error) {
	n, err := kv.client.Del(ctx, redisKeyPrefix(ns)+key).Result()
	return n > 0, kv.wrap(err)
}

// Keys implements KV. Redis has no ordered scan: it reads every matching key
// (up to MaxKeysScanned), sorts them, and returns the page after cursor, so
// that pages behave as on the database backend.
func (kv *RedisKV) Keys(ctx context.Context, ns, prefix string, limit int, cursor string) ([]string, string, error) {
	base := redisKeyPrefix(ns)
	match := globEscape(base+prefix) + "*"
	var all []string
	var scan uint64
	for {
		batch, next, err := kv.client.Scan(ctx, scan, match, 1000).Result()
		if err != nil {
			return nil, "", kv.wrap(err)
		}
		for _, k := range batch {
			if k = strings.TrimPrefix(k, base); k > cursor {
				all = append(all, k)
			}
		}
		if len(all) > MaxKeysScanned {
			return nil, "", fmt.Errorf("more than %d keys start with %q: use a longer prefix", MaxKeysScanned, prefix)
		}
		if scan = next; scan == 0 {
			break
		}
	}
	sort.Strings(all)
	all = dedupe(all)
	if len(all) > limit+1 {
		all = all[:limit+1]
	}
	return page(all, limit)
}

// dedupe drops repeated keys of a sorted list (SCAN may return a key twice).
func dedupe(sorted []string) []string {
	out := sorted[:0]
	for i, k := range sorted {
		if i == 0 || k != sorted[i-1] {
			out = append(out, k)
		}
	}
	return out
}

// globEscape escapes the characters Redis MATCH patterns give a meaning.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
