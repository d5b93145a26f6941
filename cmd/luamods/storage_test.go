package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"luamods/storage/storagetest"
)

// storageModule serves /_synapse/client/storage?op=...: rows through
// run_db_interaction and keys through api.store.
const storageModule = `local M = {}
function M.init(api, config)
  api.run_db_interaction("create", function(txn)
    txn:execute("CREATE TABLE IF NOT EXISTS serve_notes (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
  end)
  api.register_web_resource("/_synapse/client/storage", function(r)
    local q = r.query
    if q.op == "put" then
      api.run_db_interaction("put", function(txn)
        txn:execute("INSERT INTO serve_notes (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", q.k, q.v)
      end)
      return {status = 200, json = {ok = true}}
    elseif q.op == "get" then
      local v = api.run_db_interaction("get", function(txn)
        txn:execute("SELECT v FROM serve_notes WHERE k = ?", q.k)
        local row = txn:fetchone()
        return row and row[1]
      end)
      return {status = 200, json = {v = v}}
    elseif q.op == "sset" then
      api.store.set(q.k, q.v)
      return {status = 200, json = {ok = true}}
    elseif q.op == "sget" then
      return {status = 200, json = {v = api.store.get(q.k)}}
    elseif q.op == "incr" then
      return {status = 200, json = {n = api.store.incr(q.k, 1)}}
    elseif q.op == "sleep" then
      api.run_db_interaction("sleep", function(txn) txn:execute("SELECT pg_sleep(600)") end)
      return {status = 200, json = {slept = true}}
    end
    return {status = 400, json = {error = "unknown op"}}
  end)
end
return M`

// client is an HTTP client for many concurrent requests to few servers.
var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 5 * time.Minute}

// op calls the storage module of s and returns the JSON answer.
func op(t *testing.T, s *server, args ...string) (int, map[string]any) {
	t.Helper()
	q := url.Values{}
	for i := 0; i+1 < len(args); i += 2 {
		q.Set(args[i], args[i+1])
	}
	resp, err := client.Get("http://" + s.addr + "/_synapse/client/storage?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

func mustOp(t *testing.T, s *server, args ...string) map[string]any {
	t.Helper()
	code, out := op(t, s, args...)
	if code != 200 {
		t.Fatalf("%v: %d %v\n%s", args, code, out, s.log())
	}
	return out
}

func storageConfig(addr, sections string) string {
	return fmt.Sprintf("listen: %s\n%smodules:\n  - module: storage.lua\n    timeout: 2m\n", addr, sections)
}

func TestServeDataSurvivesARestart(t *testing.T) {
	dir := writeDir(t, map[string]string{"storage.lua": storageModule})
	addr := freePort(t)
	writeFile(t, dir, "luamods.yaml", storageConfig(addr, ""))
	s := startServer(t, dir)
	mustOp(t, s, "op", "put", "k", "a", "v", "kept")
	mustOp(t, s, "op", "sset", "k", "b", "v", "stored")
	s.signal(syscall.SIGTERM)
	s.cmd.Wait()

	s = startServer(t, dir)
	if got := mustOp(t, s, "op", "get", "k", "a")["v"]; got != "kept" {
		t.Fatalf("the row after a restart: %v", got)
	}
	if got := mustOp(t, s, "op", "sget", "k", "b")["v"]; got != "stored" {
		t.Fatalf("the key after a restart: %v", got)
	}
}

func TestTwoServeProcessesShareTheirData(t *testing.T) {
	pg := storagetest.StartPostgres(t)
	r := storagetest.StartRedis(t)
	for _, backend := range []string{"database", "redis"} {
		t.Run(backend, func(t *testing.T) {
			sections := fmt.Sprintf("database: {name: psycopg2, args: {user: postgres, dbname: %s, host: 127.0.0.1, port: %d, cp_min: 1, cp_max: 8}}\n"+
				"redis: {enabled: true, host: 127.0.0.1, port: %d}\nstore: {backend: %s}\n", pg.NewDatabase(t), pg.Port, r.Port, backend)
			var servers [2]*server
			for i := range servers {
				dir := writeDir(t, map[string]string{"storage.lua": storageModule})
				writeFile(t, dir, "luamods.yaml", storageConfig(freePort(t), sections))
				servers[i] = startServer(t, dir)
			}
			a, b := servers[0], servers[1]
			mustOp(t, a, "op", "put", "k", "from-a", "v", "1")
			mustOp(t, b, "op", "sset", "k", "from-b", "v", "2")
			if got := mustOp(t, b, "op", "get", "k", "from-a")["v"]; got != "1" {
				t.Fatalf("b reads a's row: %v", got)
			}
			if got := mustOp(t, a, "op", "sget", "k", "from-b")["v"]; got != "2" {
				t.Fatalf("a reads b's key: %v", got)
			}

			// 2×500 increments, 32 at a time per process.
			var wg sync.WaitGroup
			errs := make(chan string, 1000)
			for _, s := range servers {
				work := make(chan struct{})
				for range 32 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range work {
							if code, out := op(t, s, "op", "incr", "k", "hits"); code != 200 {
								errs <- fmt.Sprintf("%d %v", code, out)
							}
						}
					}()
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range 500 {
						work <- struct{}{}
					}
					close(work)
				}()
			}
			wg.Wait()
			close(errs)
			for e := range errs {
				t.Fatalf("an increment failed: %s\n%s", e, a.log()+b.log())
			}
			if got := mustOp(t, b, "op", "sget", "k", "hits")["v"]; got != float64(1000) {
				t.Fatalf("2×500 increments from two processes = %v", got)
			}
		})
	}
}

// running reports whether PostgreSQL is running a statement containing what.
func running(t *testing.T, pg *storagetest.Postgres, what string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, pg.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE $1 AND pid <> pg_backend_pid()", "%"+what+"%").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

func eventuallyTrue(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestADatabaseThatGoesAwayFailsTheCallAndComesBack(t *testing.T) {
	pg := storagetest.StartPostgres(t)
	dir := writeDir(t, map[string]string{"storage.lua": storageModule})
	writeFile(t, dir, "luamods.yaml", storageConfig(freePort(t),
		fmt.Sprintf("database: {name: psycopg2, args: {user: postgres, dbname: postgres, host: 127.0.0.1, port: %d}}\n", pg.Port)))
	s := startServer(t, dir)
	mustOp(t, s, "op", "put", "k", "before", "v", "1")

	done := make(chan int, 1)
	go func() {
		code, _ := op(t, s, "op", "sleep")
		done <- code
	}()
	eventuallyTrue(t, "the statement runs", func() bool { return running(t, pg, "pg_sleep(600)") })
	pg.Stop()
	if code := <-done; code != 500 {
		t.Fatalf("a call whose database went away answered %d", code)
	}
	if log := s.log(); !strings.Contains(log, "storage.lua:28:") || !strings.Contains(log, "txn:execute: sleep:") {
		t.Fatalf("the error does not say where and what:\n%s", log)
	}
	pg.Start()
	var last string
	defer func() {
		if t.Failed() {
			t.Logf("last answer: %s\n%s", last, s.log())
		}
	}()
	eventuallyTrue(t, "the module reads again", func() bool {
		code, out := op(t, s, "op", "get", "k", "before")
		last = fmt.Sprint(code, out)
		return code == 200 && out["v"] == "1"
	})
}

func TestTheCallDeadlineCancelsTheQuery(t *testing.T) {
	// The client's cancel request at the deadline can lose the race with
	// the broken socket on a loaded machine; the transaction's
	// statement_timeout (storage.pgBegin) stops the statement anyway.
	pg := storagetest.StartPostgres(t)
	dir := writeDir(t, map[string]string{"storage.lua": storageModule})
	config := storageConfig(freePort(t), fmt.Sprintf("database: {name: psycopg2, args: {user: postgres, dbname: postgres, host: 127.0.0.1, port: %d}}\n", pg.Port))
	writeFile(t, dir, "luamods.yaml", strings.Replace(config, "timeout: 2m", "timeout: 1s", 1))
	s := startServer(t, dir)
	if code, _ := op(t, s, "op", "sleep"); code != 500 {
		t.Fatalf("a call past its deadline answered %d", code)
	}
	s.waitLog("deadline", 1)
	eventuallyTrue(t, "PostgreSQL stops the statement", func() bool { return !running(t, pg, "pg_sleep(600)") })
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestREPLRunsStoreAndDatabaseCalls(t *testing.T) {
	dir := writeDir(t, map[string]string{"storage.lua": storageModule})
	writeFile(t, dir, "luamods.yaml", storageConfig(freePort(t), ""))
	stdin := "api.store.set('a', {x = 41})\napi.store.get('a').x + 1\n" +
		"api.run_db_interaction('q', function(txn) txn:execute('SELECT count(*) FROM serve_notes WHERE k <> ?', 'x') return txn:fetchone()[1] end)\n"
	code, stdout, stderr := runCLI("", stdin, "repl", "-c", filepath.Join(dir, "luamods.yaml"), "storage.lua")
	if code != 0 || !strings.Contains(stdout, "42\n") || !strings.Contains(stdout, "0\n") {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
}
