package luaapi

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"sync"

	lua "github.com/yuin/gopher-lua"
)

// Chunk is a compiled Lua file: immutable, shared by every state that
// loads it (State.Load).
type Chunk struct{ proto *lua.FunctionProto }

// Compiler compiles each version of a file once. Chunks are shared by
// every state, and by generations while the file is unchanged. Safe for
// concurrent use.
type Compiler struct {
	mu    sync.Mutex
	cache map[string]compiled // by path
}

type compiled struct {
	hash  string
	chunk *Chunk
}

// NewCompiler returns an empty compiler.
func NewCompiler() *Compiler { return &Compiler{cache: map[string]compiled{}} }

// Compile returns the chunk of the file's current content and its hash
// (ContentHash); a file that does not compile gives its hash and a
// *SyntaxError.
func (c *Compiler) Compile(path string) (*Chunk, string, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	hash := ContentHash(src)
	c.mu.Lock()
	if cc, ok := c.cache[path]; ok && cc.hash == hash {
		c.mu.Unlock()
		return cc.chunk, hash, nil
	}
	c.mu.Unlock()
	proto, err := Compile(string(src), path)
	if err != nil {
		return nil, hash, err
	}
	chunk := &Chunk{proto: proto}
	c.mu.Lock()
	c.cache[path] = compiled{hash: hash, chunk: chunk}
	c.mu.Unlock()
	return chunk, hash, nil
}

// Recording returns a compile function for Env.Compile (require) that
// compiles with c and reports each file it loads, with its hash.
func (c *Compiler) Recording(loaded func(path, hash string)) func(path string) (*lua.FunctionProto, error) {
	return func(path string) (*lua.FunctionProto, error) {
		chunk, hash, err := c.Compile(path)
		if err != nil {
			return nil, err
		}
		loaded(path, hash)
		return chunk.proto, nil
	}
}

// FileHash is the hash Compile gives the file's current content ("" when
// it cannot be read).
func FileHash(path string) string {
	src, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return ContentHash(src)
}

// ContentHash is the hash of a file's content, as Compile records it.
func ContentHash(src []byte) string {
	sum := sha256.Sum256(src)
	return hex.EncodeToString(sum[:])
}
