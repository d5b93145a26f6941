// Package modtest runs module tests: *_test.lua files that load modules
// with a fake homeserver, fake outbound HTTP and a virtual clock, call their
// callbacks and routes, and assert on the results (`luamods test`).
//
// A test file runs in a sandboxed Lua state of its own. It declares tests
// with test(name, function() ... end) and checks with the expect table; the
// modules it loads run in engines of their own, exactly as luamods serve
// runs them, and values cross between the two as copies.
package modtest
