package storage

import (
	"context"
	"errors"
	"time"
)

// KV is a key-value store with expiry, shared by every process that uses
// the same database or Redis. Keys live in namespaces (one per module);
// values are opaque bytes (the engine stores JSON). Expired keys are never
// returned. Add and Incr are atomic across processes.
type KV interface {
	// Get returns the value of key, and false when it is absent or expired.
	Get(ctx context.Context, ns, key string) ([]byte, bool, error)
	// Set stores value; ttl > 0 makes it expire.
	Set(ctx context.Context, ns, key string, value []byte, ttl time.Duration) error
	// Add stores value only when key is absent (or expired); it reports
	// whether it did.
	Add(ctx context.Context, ns, key string, value []byte, ttl time.Duration) (bool, error)
	// Incr adds n to the integer at key and returns the result. An absent
	// key starts at 0 and gets ttl (when > 0); an existing one keeps its
	// expiry. A value that is not an integer is an error.
	Incr(ctx context.Context, ns, key string, n int64, ttl time.Duration) (int64, error)
	// Delete removes key and reports whether it existed.
	Delete(ctx context.Context, ns, key string) (bool, error)
	// Keys lists up to limit keys starting with prefix, in byte order, after
	// cursor ("" for the first page). next is the cursor of the next page,
	// "" when there is none.
	Keys(ctx context.Context, ns, prefix string, limit int, cursor string) (keys []string, next string, err error)
	// Close releases the store's connections and background work.
	Close()
}

// ErrNotInteger is Incr on a value that is not an integer.
var ErrNotInteger = errors.New("the value is not an integer")

// MaxKeysScanned bounds how many matching keys Keys reads on Redis to sort
// one page.
const MaxKeysScanned = 100_000

// expiry returns the expiry time in Unix milliseconds for ttl from now, or
// nil for no expiry.
func expiry(now time.Time, ttl time.Duration) any {
	if ttl <= 0 {
		return nil
	}
	return now.Add(ttl).UnixMilli()
}
