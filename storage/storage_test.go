package storage

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"luamods/storage/storagetest"
)

func TestNumberPlaceholders(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"SELECT 1", "SELECT 1"},
		{"SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = $1 AND b = $2"},
		{"SELECT '?', ? FROM t", "SELECT '?', $1 FROM t"},
		{"SELECT 'it''s ?', ?", "SELECT 'it''s ?', $1"},
		{`SELECT "we?ird", ?`, `SELECT "we?ird", $1`},
		{"SELECT ? -- why?\n, ?", "SELECT $1 -- why?\n, $2"},
		{"SELECT /* ? */ ?", "SELECT /* ? */ $1"},
		{"SELECT $$ ? $$, ?", "SELECT $$ ? $$, $1"},
		{"SELECT $tag$ ? $tag$, ?", "SELECT $tag$ ? $tag$, $1"},
		{"SELECT 'unterminated ?", "SELECT 'unterminated ?"},
	} {
		if got := numberPlaceholders(c.in); got != c.want {
			t.Errorf("numberPlaceholders(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// databases opens a fresh SQLite file and a fresh PostgreSQL database.
func databases(t *testing.T) map[string]*DB {
	t.Helper()
	ctx := context.Background()
	out := map[string]*DB{}
	lite, err := Open(ctx, Options{Engine: SQLite, Path: filepath.Join(t.TempDir(), "t.db")}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lite.Close)
	out[SQLite] = lite
	pgs := storagetest.StartPostgres(t)
	pg, err := Open(ctx, Options{Engine: Postgres, Host: "127.0.0.1", Port: pgs.Port, User: "postgres", DBName: pgs.NewDatabase(t), MaxConns: 8}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Close)
	out[Postgres] = pg
	return out
}

func interact(t *testing.T, db *DB, f func(tx *Tx) error) error {
	t.Helper()
	ctx := context.Background()
	tx, err := db.Begin(ctx, "test", "t")
	if err != nil {
		t.Fatal(err)
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit(ctx)
}

func TestTransactionsOnBothDatabases(t *testing.T) {
	ctx := context.Background()
	for name, db := range databases(t) {
		t.Run(name, func(t *testing.T) {
			err := interact(t, db, func(tx *Tx) error {
				if _, _, err := tx.Execute(ctx, "CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, n BIGINT, score DOUBLE PRECISION)", nil); err != nil {
					return err
				}
				_, n, err := tx.Execute(ctx, "INSERT INTO users (name, n, score) VALUES (?, ?, ?), (?, ?, ?)", []any{"a", int64(1), 1.5, "b?", nil, nil})
				if n != 2 {
					t.Errorf("rowcount of the insert = %d", n)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			err = interact(t, db, func(tx *Tx) error {
				rows, n, err := tx.Execute(ctx, "SELECT name, n, score FROM users WHERE name <> '?' ORDER BY name", nil)
				if err != nil {
					return err
				}
				want := fmt.Sprint([][]any{{"a", int64(1), 1.5}, {"b?", nil, nil}})
				if fmt.Sprint(rows) != want || n != 2 {
					t.Errorf("rows = %v (%d), want %s", rows, n, want)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}

			// An error rolls back what the transaction did.
			boom := errors.New("boom")
			err = interact(t, db, func(tx *Tx) error {
				if _, _, err := tx.Execute(ctx, "INSERT INTO users (name) VALUES (?)", []any{"c"}); err != nil {
					return err
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatal(err)
			}
			_ = interact(t, db, func(tx *Tx) error {
				rows, _, err := tx.Execute(ctx, "SELECT count(*) FROM users WHERE name = ?", []any{"c"})
				if err != nil || rows[0][0] != int64(0) {
					t.Errorf("after rollback: %v %v", rows, err)
				}
				return nil
			})

			// A bad statement names the problem.
			err = interact(t, db, func(tx *Tx) error {
				_, _, err := tx.Execute(ctx, "SELECT nope FROM users", nil)
				return err
			})
			if err == nil {
				t.Fatal("a bad statement succeeded")
			}
		})
	}
}

func TestContextEndRollsBack(t *testing.T) {
	for name, db := range databases(t) {
		t.Run(name, func(t *testing.T) {
			_ = interact(t, db, func(tx *Tx) error {
				_, _, err := tx.Execute(context.Background(), "CREATE TABLE k (v TEXT)", nil)
				return err
			})
			ctx, cancel := context.WithCancel(context.Background())
			tx, err := db.Begin(ctx, "test", "abandoned")
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := tx.Execute(ctx, "INSERT INTO k VALUES (?)", []any{"x"}); err != nil {
				t.Fatal(err)
			}
			cancel() // the call ended without commit
			var rows [][]any
			deadline := time.Now().Add(time.Minute)
			for {
				err = interact(t, db, func(tx *Tx) error {
					rows, _, err = tx.Execute(context.Background(), "SELECT count(*) FROM k", nil)
					return err
				})
				if err == nil || time.Now().After(deadline) {
					break
				}
				time.Sleep(10 * time.Millisecond) // SQLite: the abandoned write lock is being released
			}
			if err != nil || rows[0][0] != int64(0) {
				t.Fatalf("rows after an abandoned transaction: %v %v", rows, err)
			}
		})
	}
}

func TestSerializationFailureIsRetryable(t *testing.T) {
	db := databases(t)[Postgres]
	ctx := context.Background()
	err := interact(t, db, func(tx *Tx) error {
		if _, _, err := tx.Execute(ctx, "CREATE TABLE c (id INT PRIMARY KEY, n INT)", nil); err != nil {
			return err
		}
		_, _, err := tx.Execute(ctx, "INSERT INTO c VALUES (1, 0)", nil)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := db.Begin(ctx, "test", "a")
	defer a.Rollback()
	b, _ := db.Begin(ctx, "test", "b")
	defer b.Rollback()
	for _, tx := range []*Tx{a, b} {
		if _, _, err := tx.Execute(ctx, "SELECT n FROM c WHERE id = 1", nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := a.Execute(ctx, "UPDATE c SET n = n + 1 WHERE id = 1", nil); err != nil {
		t.Fatal(err)
	}
	if err := a.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	_, _, err = b.Execute(ctx, "UPDATE c SET n = n + 1 WHERE id = 1", nil)
	if !db.Retryable(err) {
		t.Fatalf("a concurrent update under REPEATABLE READ: %v, not retryable", err)
	}
}

func TestDatabaseThatGoesAwayFailsWithinTheDeadlineAndRecovers(t *testing.T) {
	pgs := storagetest.StartPostgres(t)
	db, err := Open(context.Background(), Options{Engine: Postgres, Host: "127.0.0.1", Port: pgs.Port, User: "postgres", DBName: "postgres"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tx, err := db.Begin(ctx, "test", "sleepy")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	failed := make(chan error, 1)
	go func() {
		close(started)
		_, _, err := tx.Execute(ctx, "SELECT pg_sleep(600)", nil)
		failed <- err
	}()
	<-started
	pgs.Stop()
	select {
	case err := <-failed:
		if err == nil {
			t.Fatal("the query survived its server")
		}
		t.Logf("error: %v", err)
	case <-ctx.Done():
		t.Fatal("the query outlived its deadline")
	}
	tx.Rollback()
	pgs.Start()
	// The pool reconnects.
	deadline := time.Now().Add(time.Minute)
	for {
		tx, err := db.Begin(context.Background(), "test", "after")
		if err == nil {
			_, _, err = tx.Execute(context.Background(), "SELECT 1", nil)
			tx.Rollback()
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery after the server came back: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestOpenErrorsNameTheDatabase(t *testing.T) {
	ctx := context.Background()
	missingDir := filepath.Join(t.TempDir(), "nope", "x.db")
	_, err := Open(ctx, Options{Engine: SQLite, Path: missingDir}, nil, nil)
	if err == nil || !contains(err.Error(), missingDir) {
		t.Errorf("missing folder: %v", err)
	}
	port := storagetest.FreePort(t)
	_, err = Open(ctx, Options{Engine: Postgres, Host: "127.0.0.1", Port: port, User: "u", DBName: "d"}, nil, nil)
	if err == nil || !contains(err.Error(), fmt.Sprintf("127.0.0.1:%d", port)) {
		t.Errorf("no server: %v", err)
	}
}

func contains(s, sub string) bool {
	return len(sub) > 0 && len(s) >= len(sub) && (s == sub || indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// fakeNow is a clock the test moves.
type fakeNow struct{ ms atomic.Int64 }

func (f *fakeNow) now() time.Time          { return time.UnixMilli(f.ms.Load()) }
func (f *fakeNow) advance(d time.Duration) { f.ms.Add(d.Milliseconds()) }

// stores returns the three backends, each twice (two processes' views of
// the same data), with the clock of the SQL ones.
func stores(t *testing.T) map[string][2]KV {
	t.Helper()
	clock := &fakeNow{}
	clock.ms.Store(time.Now().UnixMilli())
	out := map[string][2]KV{}
	for name, db := range databases(t) {
		a, b := NewSQLKV(db, clock.now, true, nil), NewSQLKV(db, clock.now, false, nil)
		t.Cleanup(a.Close)
		t.Cleanup(b.Close)
		out[name] = [2]KV{a, b}
	}
	r := storagetest.StartRedis(t)
	opts := RedisOptions{Host: "127.0.0.1", Port: r.Port}
	a, b := NewRedisKV(opts), NewRedisKV(opts)
	t.Cleanup(a.Close)
	t.Cleanup(b.Close)
	out["redis"] = [2]KV{a, b}
	storeClocks[out[SQLite][0]] = clock
	storeClocks[out[Postgres][0]] = clock
	return out
}

var storeClocks = map[KV]*fakeNow{}

func TestStoreOperations(t *testing.T) {
	ctx := context.Background()
	for name, pair := range stores(t) {
		t.Run(name, func(t *testing.T) {
			kv, other := pair[0], pair[1]
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			if _, ok, err := kv.Get(ctx, "m", "k"); ok || err != nil {
				t.Fatalf("get of nothing: %v %v", ok, err)
			}
			must(kv.Set(ctx, "m", "k", []byte(`{"a":1}`), 0))
			if v, ok, err := other.Get(ctx, "m", "k"); !ok || string(v) != `{"a":1}` || err != nil {
				t.Fatalf("the other process reads %q %v %v", v, ok, err)
			}
			if _, ok, _ := kv.Get(ctx, "other-module", "k"); ok {
				t.Fatal("a key crossed namespaces")
			}
			added, err := kv.Add(ctx, "m", "k", []byte(`2`), 0)
			must(err)
			if added {
				t.Fatal("add over an existing key")
			}
			added, err = other.Add(ctx, "m", "new", []byte(`"x"`), 0)
			must(err)
			if !added {
				t.Fatal("add of a new key failed")
			}
			n, err := kv.Incr(ctx, "m", "count", 5, 0)
			must(err)
			if n != 5 {
				t.Fatalf("incr of nothing = %d", n)
			}
			if n, _ = other.Incr(ctx, "m", "count", -2, 0); n != 3 {
				t.Fatalf("incr = %d", n)
			}
			if _, err := kv.Incr(ctx, "m", "new", 1, 0); !errors.Is(err, ErrNotInteger) {
				t.Fatalf("incr of a string: %v", err)
			}
			existed, err := kv.Delete(ctx, "m", "new")
			must(err)
			if !existed {
				t.Fatal("delete of a key reported it absent")
			}
			if existed, _ = kv.Delete(ctx, "m", "new"); existed {
				t.Fatal("second delete reported the key present")
			}
			for i := range 5 {
				must(kv.Set(ctx, "m", fmt.Sprintf("p:%d", i), []byte("1"), 0))
			}
			must(kv.Set(ctx, "m2", "p:9", []byte("1"), 0))
			keys, next, err := kv.Keys(ctx, "m", "p:", 2, "")
			must(err)
			var all []string
			for {
				all = append(all, keys...)
				if next == "" {
					break
				}
				if len(keys) != 2 {
					t.Fatalf("a page of %d keys with more to come", len(keys))
				}
				keys, next, err = kv.Keys(ctx, "m", "p:", 2, next)
				must(err)
			}
			if fmt.Sprint(all) != "[p:0 p:1 p:2 p:3 p:4]" {
				t.Fatalf("keys = %v", all)
			}
		})
	}
}

func TestStoreExpiry(t *testing.T) {
	ctx := context.Background()
	for name, pair := range stores(t) {
		t.Run(name, func(t *testing.T) {
			kv := pair[0]
			if err := kv.Set(ctx, "m", "short", []byte("1"), 50*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			if n, err := kv.Incr(ctx, "m", "window", 1, 50*time.Millisecond); n != 1 || err != nil {
				t.Fatal(n, err)
			}
			if err := kv.Set(ctx, "m", "long", []byte("1"), time.Hour); err != nil {
				t.Fatal(err)
			}
			if _, ok, _ := kv.Get(ctx, "m", "short"); !ok {
				t.Fatal("a key expired at once")
			}
			if clock := storeClocks[kv]; clock != nil {
				clock.advance(time.Second)
			}
			// Redis expires on its own clock: wait for it, generously.
			deadline := time.Now().Add(time.Minute)
			for {
				_, ok, err := kv.Get(ctx, "m", "short")
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the key never expired")
				}
				time.Sleep(10 * time.Millisecond)
			}
			keys, _, _ := kv.Keys(ctx, "m", "", 10, "")
			if fmt.Sprint(keys) != "[long]" {
				t.Fatalf("keys after expiry: %v", keys)
			}
			if added, _ := kv.Add(ctx, "m", "short", []byte("2"), 0); !added {
				t.Fatal("add over an expired key failed")
			}
			if n, _ := kv.Incr(ctx, "m", "window", 1, 50*time.Millisecond); n != 1 {
				t.Fatalf("incr of an expired counter = %d, want a fresh 1", n)
			}
			if sq, ok := kv.(*SQLKV); ok {
				storeClocks[kv].advance(time.Second)
				if n, err := sq.Purge(ctx); n != 1 || err != nil {
					t.Fatalf("purge removed %d rows (%v), want the expired counter", n, err)
				}
			}
		})
	}
}

func TestConcurrentIncrIsAtomic(t *testing.T) {
	ctx := context.Background()
	for name, pair := range stores(t) {
		t.Run(name, func(t *testing.T) {
			var wg sync.WaitGroup
			errs := make(chan error, 1000)
			for _, kv := range pair {
				for range 500 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if _, err := kv.Incr(ctx, "m", "hits", 1, time.Hour); err != nil {
							errs <- err
						}
					}()
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			v, _, _ := pair[0].Get(ctx, "m", "hits")
			if string(v) != "1000" {
				t.Fatalf("2×500 increments = %s", v)
			}
		})
	}
}
