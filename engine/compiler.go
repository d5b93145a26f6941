package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"sync"

	lua "github.com/yuin/gopher-lua"

	"luamods/luaapi"
)

// compiler compiles each version of a file once. Protos are immutable and
// shared by every state, and by generations while the file is unchanged.
type compiler struct {
	mu    sync.Mutex
	cache map[string]compiled // by path
}

type compiled struct {
	hash  string
	proto *lua.FunctionProto
}

func newCompiler() *compiler { return &compiler{cache: map[string]compiled{}} }

// compile returns the proto of the file's current content and its hash.
func (c *compiler) compile(path string) (*lua.FunctionProto, string, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	hash := contentHash(src)
	c.mu.Lock()
	if cc, ok := c.cache[path]; ok && cc.hash == hash {
		c.mu.Unlock()
		return cc.proto, hash, nil
	}
	c.mu.Unlock()
	proto, err := luaapi.Compile(string(src), path)
	if err != nil {
		return nil, hash, err
	}
	c.mu.Lock()
	c.cache[path] = compiled{hash: hash, proto: proto}
	c.mu.Unlock()
	return proto, hash, nil
}

// fileHash is the hash compile gives the file's current content ("" when
// it cannot be read).
func fileHash(path string) string {
	src, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return contentHash(src)
}

// contentHash is the hash of a file's content, as compile records it.
func contentHash(src []byte) string {
	sum := sha256.Sum256(src)
	return hex.EncodeToString(sum[:])
}
