package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"luamods/storage/storagetest"
)

// notesModule keeps notes in a table and counters in api.store; the test
// callback run(cmd, key) drives it.
const notesModule = `
local M = {}
function M.init(api, config)
  api.run_db_interaction("create_notes", function(txn)
    txn:execute("CREATE TABLE IF NOT EXISTS notes (id TEXT PRIMARY KEY, body TEXT, n BIGINT)")
  end)
  local cmds = {}
  function cmds.put(key)
    return api.run_db_interaction("put_note", function(txn, id, body)
      txn:execute("INSERT INTO notes (id, body, n) VALUES (?, ?, ?)", id, body, 1)
      return txn.rowcount
    end, key, "body of " .. key)
  end
  function cmds.get(key)
    return api.run_db_interaction("get_note", function(txn)
      txn:execute("SELECT body, n FROM notes WHERE id = ? AND body <> '?'", key)
      local row = txn:fetchone()
      if row == nil then return nil end
      return {body = row[1], n = row[2], more = txn:fetchone() ~= nil}
    end)
  end
  function cmds.put_then_fail(key)
    return api.run_db_interaction("put_then_fail", function(txn)
      txn:execute("INSERT INTO notes (id, body) VALUES (?, ?)", key, "never")
      error("changed my mind")
    end)
  end
  function cmds.count()
    return api.run_db_interaction("count", function(txn)
      txn:execute("SELECT id FROM notes ORDER BY id")
      local ids = {}
      for _, row in ipairs(txn:fetchall()) do ids[#ids + 1] = row[1] end
      return ids
    end)
  end
  function cmds.bad_sql()
    return api.run_db_interaction("bad_sql", function(txn)
      txn:execute("SELEKT 1")
    end)
  end
  function cmds.leak()
    local kept
    api.run_db_interaction("leak", function(txn) kept = txn end)
    kept:execute("SELECT 1")
  end
  function cmds.set(key) api.store.set(key, {by = config.name}, {ttl = 60}); return true end
  function cmds.sget(key) return api.store.get(key) end
  function cmds.incr(key) return api.store.incr(key, 1, {ttl = 60}) end
  function cmds.add(key) return api.store.add(key, "first") end
  function cmds.delete(key) return api.store.delete(key) end
  function cmds.keys(prefix)
    local keys, next = api.store.keys(prefix, {limit = 2})
    return {keys = keys, next = next}
  end
  function cmds.noop() return true end
  api.register_test_callbacks{run = function(cmd, key) return cmds[cmd](key) end}
end
return M
`

func dbRun(t testing.TB, eng *Engine, cmd, key string) any {
	t.Helper()
	v, err := eng.Invoke(context.Background(), "test.run", cmd, key)
	if err != nil {
		t.Fatalf("%s(%s): %v", cmd, key, err)
	}
	return v
}

// storageConfigs are the database/store sections to run each test under:
// SQLite (the default), and PostgreSQL with a Redis store.
func storageConfigs(t testing.TB) map[string]string {
	t.Helper()
	pg := storagetest.StartPostgres(t)
	r := storagetest.StartRedis(t)
	return map[string]string{
		"sqlite": "",
		"postgres+redis": fmt.Sprintf("database: {name: psycopg2, args: {user: postgres, dbname: %s, host: 127.0.0.1, port: %d, cp_min: 1, cp_max: 4}}\nredis: {enabled: true, host: 127.0.0.1, port: %d}\nstore: {backend: redis}\n",
			pg.NewDatabase(t), pg.Port, r.Port),
	}
}

func TestRunDBInteraction(t *testing.T) {
	for name, section := range storageConfigs(t) {
		t.Run(name, func(t *testing.T) {
			eng, _, err := startEngine(t, map[string]string{
				"luamods.yaml": section + "modules:\n  - module: notes.lua\n    config: {name: a}\n",
				"notes.lua":    notesModule,
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := dbRun(t, eng, "put", "k1"); got != int64(1) {
				t.Fatalf("rowcount of an insert = %v", got)
			}
			got := dbRun(t, eng, "get", "k1")
			if fmt.Sprint(got) != "map[body:body of k1 more:false n:1]" {
				t.Fatalf("get = %v", got)
			}
			_, err = eng.Invoke(context.Background(), "test.run", "put_then_fail", "k2")
			if err == nil || !strings.Contains(err.Error(), "notes.lua:25: changed my mind") {
				t.Fatalf("an error inside the function: %v", err)
			}
			if got := fmt.Sprint(dbRun(t, eng, "count", "")); got != "[k1]" {
				t.Fatalf("rows after a rollback: %s", got)
			}
			_, err = eng.Invoke(context.Background(), "test.run", "bad_sql", "")
			if err == nil || !strings.Contains(err.Error(), "notes.lua:38: txn:execute: bad_sql: ") {
				t.Fatalf("bad SQL: %v", err)
			}
			_, err = eng.Invoke(context.Background(), "test.run", "leak", "")
			if err == nil || !strings.Contains(err.Error(), "notes.lua:44:") || !strings.Contains(err.Error(), "the transaction has ended") {
				t.Fatalf("a txn used after its interaction: %v", err)
			}
			if n := metricValue(t, eng, "luamods_db_interactions_total", "desc", "put_then_fail"); n != 1 {
				t.Errorf("interactions counted for put_then_fail: %v", n)
			}
		})
	}
}

func TestStoreIsNamespacedPerModule(t *testing.T) {
	for name, section := range storageConfigs(t) {
		t.Run(name, func(t *testing.T) {
			eng, _, err := startEngine(t, map[string]string{
				"luamods.yaml": section + "modules:\n  - module: a/notes.lua\n    config: {name: a}\n  - module: b/notes.lua\n    config: {name: b}\n",
				"a/notes.lua":  notesModule,
				"b/notes.lua":  notesModule,
			})
			if err != nil {
				t.Fatal(err)
			}
			a, b := eng.Current().Modules[0], eng.Current().Modules[1]
			call := func(m *Module, cmd, key string) any {
				t.Helper()
				v, err := m.State().Call(context.Background(), "cb:test.run", cmd, key)
				if err != nil {
					t.Fatal(err)
				}
				if len(v) == 0 {
					return nil
				}
				return v[0]
			}
			call(a, "set", "shared")
			call(b, "set", "shared")
			if got := fmt.Sprint(call(a, "sget", "shared"), call(b, "sget", "shared")); got != "map[by:a] map[by:b]" {
				t.Fatalf("each module's value: %s", got)
			}
			if call(a, "add", "only-a") != true || call(b, "add", "only-a") != true || call(a, "add", "only-a") != false {
				t.Fatal("add across modules")
			}
			if call(a, "incr", "c") != int64(1) || call(a, "incr", "c") != int64(2) || call(b, "incr", "c") != int64(1) {
				t.Fatal("incr across modules")
			}
			if call(b, "delete", "c") != true || call(b, "delete", "c") != false || call(a, "sget", "c") != int64(2) {
				t.Fatal("delete across modules")
			}
			if got := fmt.Sprint(call(a, "keys", "")); got != "map[keys:[c only-a] next:only-a]" {
				t.Fatalf("keys: %s", got)
			}
		})
	}
}

// stepClock is a luaapi.Clock a test moves by hand.
type stepClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

func (c *stepClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestStoreExpiryFollowsTheEngineClock(t *testing.T) {
	dir := writeFiles(t, map[string]string{"luamods.yaml": "modules:\n  - module: notes.lua\n", "notes.lua": notesModule})
	clock := &stepClock{now: time.Unix(1_700_000_000, 0)}
	eng, err := New(context.Background(), Options{ConfigPath: filepath.Join(dir, "luamods.yaml"), Catalog: catalogWithTestCategory(), Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	dbRun(t, eng, "set", "k")
	clock.advance(59 * time.Second)
	if dbRun(t, eng, "sget", "k") == nil {
		t.Fatal("expired before its ttl")
	}
	clock.advance(2 * time.Second)
	if v := dbRun(t, eng, "sget", "k"); v != nil {
		t.Fatalf("after its ttl: %v", v)
	}
	if _, err := os.Stat(filepath.Join(dir, "luamods.db")); err != nil {
		t.Fatalf("the default database is not next to the config: %v", err)
	}
}

func TestReloadKeepsOrSwitchesTheDatabase(t *testing.T) {
	dir := writeFiles(t, map[string]string{"luamods.yaml": "modules:\n  - module: notes.lua\n", "notes.lua": notesModule})
	path := filepath.Join(dir, "luamods.yaml")
	eng, err := New(context.Background(), Options{ConfigPath: path, Catalog: catalogWithTestCategory()})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	dbRun(t, eng, "put", "first")
	db := eng.data.db
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// An unchanged database keeps its connections.
	write("log_level: debug\nmodules:\n  - module: notes.lua\n")
	if _, err := eng.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if eng.data.db != db {
		t.Fatal("a reload with the same database reopened it")
	}
	// A database that cannot be opened fails the reload, naming the file.
	bad := filepath.Join(dir, "missing", "x.db")
	write("database: {name: sqlite3, args: {database: missing/x.db}}\nmodules:\n  - module: notes.lua\n")
	if _, err := eng.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("reload onto a database that cannot be opened: %v", err)
	}
	if got := fmt.Sprint(dbRun(t, eng, "count", "")); got != "[first]" {
		t.Fatalf("after a failed reload: %s", got)
	}
	// A changed database switches; the module loads afresh there.
	write("database: {name: sqlite3, args: {database: other.db}}\nmodules:\n  - module: notes.lua\n")
	if _, err := eng.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if eng.data.db == db {
		t.Fatal("the database did not switch")
	}
	dbRun(t, eng, "put", "second")
	if got := fmt.Sprint(dbRun(t, eng, "count", "")); got != "[second]" {
		t.Fatalf("rows in the new database: %s", got)
	}
}

func TestConfigStorageSections(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"database: {name: mysql}\n", "Error in configuration at 'database.name': expected sqlite3 or psycopg2"},
		{"database: {name: psycopg2}\n", "Error in configuration at 'database.args': psycopg2 needs args"},
		{"database: {name: psycopg2, args: {port: x}}\n", "Error in configuration at 'database.args.port': expected a whole number"},
		{"database: {name: sqlite3, args: {host: x}}\n", "Error in configuration at 'database.args': unknown key \"host\""},
		{"store: {backend: redis}\n", "Error in configuration at 'store.backend': the redis backend needs redis"},
		{"store: {backend: memcached}\n", "Error in configuration at 'store.backend': expected database or redis"},
	} {
		_, err := ParseConfig("/x/luamods.yaml", []byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.yaml, err, c.want)
		}
	}
	cfg, err := ParseConfig("/x/luamods.yaml", []byte("redis: {enabled: true, host: r, port: 7000, dbid: 2}\ncache: {redis: {addr: 'old:1'}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Redis.Addr != "r:7000" || cfg.Redis.DB != 2 || len(cfg.Warnings) != 2 || cfg.Database.Path != "/x/luamods.db" || !cfg.DefaultDB {
		t.Fatalf("parsed: %+v %+v", cfg.Redis, cfg)
	}
}
