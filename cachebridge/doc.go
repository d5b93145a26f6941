// Package cachebridge stores the results of memoized module functions
// (api.cached): an LRU with optional TTL per function, one computation per
// key at a time, invalidation that wins over computations in flight, and
// invalidations fanned out to other luamods processes through Redis pub/sub.
//
// It knows nothing of Lua: keys are canonical strings and values are
// JSON-like Go values, which callers treat as immutable (design §6).
package cachebridge
