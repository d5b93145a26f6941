package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// PurgeInterval is how often a SQLKV deletes the rows of expired keys.
const PurgeInterval = time.Minute

// SQLKV is a KV in the table luamods_store of a DB: one upsert per
// operation, so that Add and Incr are atomic across processes.
type SQLKV struct {
	db  *DB
	now func() time.Time
	log *slog.Logger
	q   sqlQueries

	mu      sync.Mutex  // held while creating the table
	created atomic.Bool // the table exists

	stop chan struct{}
	done chan struct{}
}

// sqlQueries are the statements of one dialect.
type sqlQueries struct {
	create, get, set, add, incr, del, keys, purge []string
}

// The statements, written with ? (rewritten to $n for PostgreSQL). The
// "expired" test is (expires_at IS NOT NULL AND expires_at <= now).
const (
	kvGet = `SELECT value FROM luamods_store WHERE namespace = ? AND key = ? AND (expires_at IS NULL OR expires_at > ?)`
	kvSet = `INSERT INTO luamods_store (namespace, key, value, expires_at) VALUES (?, ?, ?, ?)
ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`
	kvAdd = `INSERT INTO luamods_store (namespace, key, value, expires_at) VALUES (?, ?, ?, ?)
ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
WHERE luamods_store.expires_at IS NOT NULL AND luamods_store.expires_at <= ?`
	kvIncr = `INSERT INTO luamods_store (namespace, key, value, expires_at) VALUES (?, ?, ?, ?)
ON CONFLICT (namespace, key) DO UPDATE SET
  value = CASE WHEN luamods_store.expires_at IS NOT NULL AND luamods_store.expires_at <= ? THEN excluded.value
    ELSE CAST(CAST(luamods_store.value AS BIGINT) + ? AS TEXT) END,
  expires_at = CASE WHEN luamods_store.expires_at IS NOT NULL AND luamods_store.expires_at <= ? THEN excluded.expires_at
    ELSE luamods_store.expires_at END
WHERE (luamods_store.expires_at IS NOT NULL AND luamods_store.expires_at <= ?) OR %s
RETURNING value`
	kvDelete = `DELETE FROM luamods_store WHERE namespace = ? AND key = ? AND (expires_at IS NULL OR expires_at > ?)`
	kvKeys   = `SELECT key FROM luamods_store WHERE namespace = ? AND substr(key, 1, ?) = ? AND key > ?
AND (expires_at IS NULL OR expires_at > ?) ORDER BY key LIMIT ?`
	kvPurge = `DELETE FROM luamods_store WHERE expires_at IS NOT NULL AND expires_at <= ?`
)

var sqliteQueries = sqlQueries{
	create: []string{
		`CREATE TABLE IF NOT EXISTS luamods_store (namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, expires_at BIGINT, PRIMARY KEY (namespace, key))`,
		`CREATE INDEX IF NOT EXISTS luamods_store_expires ON luamods_store (expires_at) WHERE expires_at IS NOT NULL`,
	},
	get: []string{kvGet}, set: []string{kvSet}, add: []string{kvAdd},
	incr: []string{fmt.Sprintf(kvIncr, `(luamods_store.value <> '' AND luamods_store.value NOT GLOB '*[^0-9]*')
  OR (luamods_store.value GLOB '-[0-9]*' AND substr(luamods_store.value, 2) NOT GLOB '*[^0-9]*')`)},
	del: []string{kvDelete}, keys: []string{kvKeys}, purge: []string{kvPurge},
}

var postgresQueries = sqlQueries{
	create: []string{
		`CREATE TABLE IF NOT EXISTS luamods_store (namespace TEXT COLLATE "C" NOT NULL, key TEXT COLLATE "C" NOT NULL, value TEXT NOT NULL, expires_at BIGINT, PRIMARY KEY (namespace, key))`,
		`CREATE INDEX IF NOT EXISTS luamods_store_expires ON luamods_store (expires_at) WHERE expires_at IS NOT NULL`,
	},
	get: pg(kvGet), set: pg(kvSet), add: pg(kvAdd),
	incr: pg(fmt.Sprintf(kvIncr, `luamods_store.value ~ '^-?[0-9]+$'`)),
	del:  pg(kvDelete), keys: pg(kvKeys), purge: pg(kvPurge),
}

func pg(q string) []string { return []string{numberPlaceholders(q)} }

// NewSQLKV returns the store in db's luamods_store table (created on first
// use). now is the clock of expiry (nil: time.Now). With purge, a goroutine
// deletes expired rows every PurgeInterval: one process sharing the database
// is enough.
func NewSQLKV(db *DB, now func() time.Time, purge bool, log *slog.Logger) *SQLKV {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	kv := &SQLKV{db: db, now: now, log: log, q: sqliteQueries, stop: make(chan struct{}), done: make(chan struct{})}
	if db.pg != nil {
		kv.q = postgresQueries
	}
	if purge {
		go kv.purgeLoop()
	} else {
		close(kv.done)
	}
	return kv
}

// Close stops the purge.
func (kv *SQLKV) Close() {
	select {
	case <-kv.stop:
	default:
		close(kv.stop)
	}
	<-kv.done
}

func (kv *SQLKV) purgeLoop() {
	defer close(kv.done)
	t := time.NewTicker(PurgeInterval)
	defer t.Stop()
	for {
		select {
		case <-kv.stop:
			return
		case <-t.C:
			if _, err := kv.Purge(context.Background()); err != nil {
				kv.log.Warn("store: purging expired keys failed", "error", err)
			}
		}
	}
}

// Purge deletes the rows of expired keys now and returns how many.
func (kv *SQLKV) Purge(ctx context.Context) (int64, error) {
	if err := kv.ensure(ctx); err != nil {
		return 0, err
	}
	return kv.exec(ctx, kv.q.purge[0], kv.now().UnixMilli())
}

// ensure creates the table on first use. Two processes creating it at
// once can make PostgreSQL's CREATE ... IF NOT EXISTS fail in one of them:
// it tries again, finding the table there.
func (kv *SQLKV) ensure(ctx context.Context) error {
	if kv.created.Load() {
		return nil
	}
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if kv.created.Load() {
		return nil
	}
	var err error
	for range 3 {
		if err = kv.create(ctx); err == nil {
			kv.created.Store(true)
			return nil
		}
	}
	return fmt.Errorf("creating the luamods_store table: %w", err)
}

func (kv *SQLKV) create(ctx context.Context) error {
	for _, q := range kv.q.create {
		if _, err := kv.exec(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

func (kv *SQLKV) exec(ctx context.Context, q string, args ...any) (int64, error) {
	if kv.db.pg != nil {
		tag, err := kv.db.pg.Exec(ctx, q, args...)
		if err != nil {
			return 0, kv.db.wrap(ctx, err)
		}
		return tag.RowsAffected(), nil
	}
	res, err := kv.db.sqlite.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, kv.db.wrap(ctx, err)
	}
	return res.RowsAffected()
}

// queryValue runs a query for one text value; ok is false without a row.
func (kv *SQLKV) queryValue(ctx context.Context, q string, args ...any) (value string, ok bool, err error) {
	if kv.db.pg != nil {
		err = kv.db.pg.QueryRow(ctx, q, args...).Scan(&value)
		if errors.Is(err, pgx.ErrNoRows) {
			return "", false, nil
		}
	} else {
		err = kv.db.sqlite.QueryRowContext(ctx, q, args...).Scan(&value)
		if errors.Is(err, sql.ErrNoRows) {
			return "", false, nil
		}
	}
	if err != nil {
		return "", false, kv.db.wrap(ctx, err)
	}
	return value, true, nil
}

// Get implements KV.
func (kv *SQLKV) Get(ctx context.Context, ns, key string) ([]byte, bool, error) {
	if err := kv.ensure(ctx); err != nil {
		return nil, false, err
	}
	v, ok, err := kv.queryValue(ctx, kv.q.get[0], ns, key, kv.now().UnixMilli())
	if !ok {
		return nil, false, err
	}
	return []byte(v), true, nil
}

// Set implements KV.
func (kv *SQLKV) Set(ctx context.Context, ns, key string, value []byte, ttl time.Duration) error {
	if err := kv.ensure(ctx); err != nil {
		return err
	}
	_, err := kv.exec(ctx, kv.q.set[0], ns, key, string(value), expiry(kv.now(), ttl))
	return err
}

// Add implements KV.
func (kv *SQLKV) Add(ctx context.Context, ns, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := kv.ensure(ctx); err != nil {
		return false, err
	}
	now := kv.now()
	n, err := kv.exec(ctx, kv.q.add[0], ns, key, string(value), expiry(now, ttl), now.UnixMilli())
	return n > 0, err
}

// Incr implements KV.
func (kv *SQLKV) Incr(ctx context.Context, ns, key string, n int64, ttl time.Duration) (int64, error) {
	if err := kv.ensure(ctx); err != nil {
		return 0, err
	}
	now := kv.now()
	ms := now.UnixMilli()
	v, ok, err := kv.queryValue(ctx, kv.q.incr[0], ns, key, strconv.FormatInt(n, 10), expiry(now, ttl), ms, n, ms, ms)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, ErrNotInteger
	}
	return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
}

// Delete implements KV.
func (kv *SQLKV) Delete(ctx context.Context, ns, key string) (bool, error) {
	if err := kv.ensure(ctx); err != nil {
		return false, err
	}
	n, err := kv.exec(ctx, kv.q.del[0], ns, key, kv.now().UnixMilli())
	return n > 0, err
}

// Keys implements KV.
func (kv *SQLKV) Keys(ctx context.Context, ns, prefix string, limit int, cursor string) ([]string, string, error) {
	if err := kv.ensure(ctx); err != nil {
		return nil, "", err
	}
	args := []any{ns, utf8.RuneCountInString(prefix), prefix, cursor, kv.now().UnixMilli(), limit + 1}
	var keys []string
	if kv.db.pg != nil {
		rows, err := kv.db.pg.Query(ctx, kv.q.keys[0], args...)
		if err != nil {
			return nil, "", kv.db.wrap(ctx, err)
		}
		keys, err = pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, "", kv.db.wrap(ctx, err)
		}
	} else {
		rows, err := kv.db.sqlite.QueryContext(ctx, kv.q.keys[0], args...)
		if err != nil {
			return nil, "", kv.db.wrap(ctx, err)
		}
		defer rows.Close()
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				return nil, "", err
			}
			keys = append(keys, k)
		}
		if err := rows.Err(); err != nil {
			return nil, "", kv.db.wrap(ctx, err)
		}
	}
	return page(keys, limit)
}

// page cuts a list of limit+1 keys to limit and names the next cursor.
func page(keys []string, limit int) ([]string, string, error) {
	if len(keys) > limit {
		keys = keys[:limit]
		return keys, keys[limit-1], nil
	}
	return keys, "", nil
}
