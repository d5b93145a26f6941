package engine

import (
	"context"
	"fmt"
	"testing"

	"luamods/storage/storagetest"
)

// benchBackends are the configurations of the storage benchmarks: the
// store on SQLite, on PostgreSQL and on Redis (with PostgreSQL as the
// database).
func benchBackends(b *testing.B) map[string]string {
	pg := storagetest.StartPostgres(b)
	r := storagetest.StartRedis(b)
	db := func() string {
		return fmt.Sprintf("database: {name: psycopg2, args: {user: postgres, dbname: %s, host: 127.0.0.1, port: %d, cp_max: 4}}\n", pg.NewDatabase(b), pg.Port)
	}
	return map[string]string{
		"sqlite":   "",
		"postgres": db(),
		"redis":    db() + fmt.Sprintf("redis: {enabled: true, host: 127.0.0.1, port: %d}\nstore: {backend: redis}\n", r.Port),
	}
}

// BenchmarkStorage compares each operation through a module (Invoke of a
// callback that does it: conversion, dispatch, the yield) with the same
// operation on the storage backend from Go, and with a callback that does
// nothing (the cost of the call itself).
func BenchmarkStorage(b *testing.B) {
	ctx := context.Background()
	backends := benchBackends(b)
	for _, name := range []string{"sqlite", "postgres", "redis"} {
		section := backends[name]
		eng, _, err := startEngine(b, map[string]string{
			"luamods.yaml": section + "modules:\n  - module: notes.lua\n",
			"notes.lua":    notesModule,
		})
		if err != nil {
			b.Fatal(err)
		}
		dbRun(b, eng, "set", "k")
		dbRun(b, eng, "put", "row")
		data := eng.data
		lua := func(cmd, key string) func(b *testing.B) {
			return func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := eng.Invoke(ctx, "test.run", cmd, key); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
		b.Run(name+"/noop/lua", lua("noop", ""))
		b.Run(name+"/store.get/lua", lua("sget", "k"))
		b.Run(name+"/store.get/go", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := data.kv.Get(ctx, "notes.lua", "k"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/store.incr/lua", lua("incr", "n"))
		b.Run(name+"/store.incr/go", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := data.kv.Incr(ctx, "notes.lua", "n", 1, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
		if name == "redis" {
			continue // the database is postgres's
		}
		b.Run(name+"/run_db_interaction/lua", lua("get", "row"))
		b.Run(name+"/run_db_interaction/go", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tx, err := data.db.Begin(ctx, "notes.lua", "get_note")
				if err != nil {
					b.Fatal(err)
				}
				if _, _, err := tx.Execute(ctx, "SELECT body, n FROM notes WHERE id = ? AND body <> '?'", []any{"row"}); err != nil {
					b.Fatal(err)
				}
				if err := tx.Commit(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
