package luaapi

import lua "github.com/yuin/gopher-lua"

// MaxArrayPart bounds the integer keys a table keeps in its array part.
//
// gopher-lua fills the array part up to the key assigned, one slot at a
// time, inside one VM instruction that no deadline interrupts: with its
// default bound (2^26), t[67108863] = 1 builds 64M slots (1 GiB, more while
// the slice grows) and runs on for tens of seconds after its call was
// stopped. Under 2^22 the worst single assignment builds 64 MiB. Larger
// integer keys live in the hash part, as the keys of any sparse table do;
// the length operator (and table.insert, which uses it) counts the array
// part only, so a sequence longer than MaxArrayPart-1 is not supported.
//
// gopher-lua keeps the bound in a package variable: importing luaapi sets
// it for every Lua state of the process.
const MaxArrayPart = 1 << 22

func init() { lua.MaxArrayIndex = MaxArrayPart }
