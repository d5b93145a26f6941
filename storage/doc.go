// Package storage is module persistence: the SQL database behind
// api.run_db_interaction (SQLite by default, PostgreSQL at scale, in
// Synapse's `database:` shapes) and the key-value backends behind api.store
// (a table in that database, or Redis).
//
// A DB runs transactions: Begin, then Execute with `?` placeholders on both
// databases (rewritten to $n for PostgreSQL), then Commit or Rollback. A
// transaction is bound to the context it began with: when that context ends
// (the module call's deadline), the transaction is rolled back.
//
// storage imports no other luamods package and no Lua: values are plain Go
// values, and the engine adapts these types to luaapi's small interfaces.
package storage
