// Package engine loads luamods.yaml into generations of modules and
// dispatches calls to them with Synapse's rules.
//
// Data flow: LoadConfig reads and validates the YAML; New builds the first
// Generation: for each entry of modules:, in order, it compiles the script
// once, creates its Lua state(s) (luaapi), runs parse_config and init, and
// records what init registered (callbacks into hook lists, web resources
// into the route table). The Engine holds the current generation in an
// atomic pointer; Invoke and the HTTP bridge take it for the length of a
// call. Reload builds the next generation aside (carrying unchanged modules
// over), swaps it in, and retires the old one once its calls are done.
//
// The Catalog is data: each callback's arguments, its Combiner (how the
// results of several modules become one) and its Policy (what a module's
// error does), following synapse-modules.md §3.
package engine
