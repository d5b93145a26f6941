package luaapi

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"hash"

	lua "github.com/yuin/gopher-lua"
)

// MaxRandomBytes caps n in api.crypto.random_bytes(n) and random_token(n).
const MaxRandomBytes = 1 << 16

// DefaultTokenBytes is the entropy of api.crypto.random_token() with no n.
const DefaultTokenBytes = 32

// cryptoTable is api.crypto. Digests and MACs return raw bytes (Lua strings
// are byte strings, as Python's bytes are); api.encoding turns them into hex
// or base64:
//
//	random_bytes(n)             n random bytes from crypto/rand
//	random_token([n])           n random bytes (default 32) as unpadded URL-safe base64
//	sha256(s), sha512(s)        digests of s
//	hmac_sha256(key, s)         HMAC of s under key (hmac_sha512 alike)
//	constant_time_equal(a, b)   compares two strings in time independent of their contents
func (s *State) cryptoTable() *lua.LTable {
	L := s.L
	t := L.CreateTable(0, 7)
	set := func(name string, fn lua.LGFunction) { t.RawSetString(name, L.NewFunction(fn)) }
	set("random_bytes", func(L *lua.LState) int {
		L.Push(lua.LString(randomBytes(L, "random_bytes", L.CheckInt(1))))
		return 1
	})
	set("random_token", func(L *lua.LState) int {
		b := randomBytes(L, "random_token", L.OptInt(1, DefaultTokenBytes))
		L.Push(lua.LString(base64.RawURLEncoding.EncodeToString(b)))
		return 1
	})
	set("sha256", digest(sha256.New))
	set("sha512", digest(sha512.New))
	set("hmac_sha256", mac(sha256.New))
	set("hmac_sha512", mac(sha512.New))
	set("constant_time_equal", func(L *lua.LState) int {
		a, b := L.CheckString(1), L.CheckString(2)
		L.Push(lua.LBool(subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1))
		return 1
	})
	return t
}

func randomBytes(L *lua.LState, what string, n int) []byte {
	if n < 1 || n > MaxRandomBytes {
		L.RaiseError("crypto.%s: n must be between 1 and %d, not %d", what, MaxRandomBytes, n)
	}
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (it crashes the program instead)
	return b
}

func digest(h func() hash.Hash) lua.LGFunction {
	return func(L *lua.LState) int {
		d := h()
		d.Write([]byte(L.CheckString(1)))
		L.Push(lua.LString(d.Sum(nil)))
		return 1
	}
}

func mac(h func() hash.Hash) lua.LGFunction {
	return func(L *lua.LState) int {
		m := hmac.New(h, []byte(L.CheckString(1)))
		m.Write([]byte(L.CheckString(2)))
		L.Push(lua.LString(m.Sum(nil)))
		return 1
	}
}

// encodingTable is api.encoding: byte strings to text and back.
//
//	hex_encode(s), hex_decode(s)
//	base64_encode(s), base64_decode(s)                   standard alphabet, padded
//	base64url_encode(s), base64url_decode(s)             URL-safe alphabet, unpadded
//
// The decoders also accept their alphabet's other padding, and raise an
// error on malformed input.
func (s *State) encodingTable() *lua.LTable {
	L := s.L
	t := L.CreateTable(0, 6)
	for _, c := range []struct {
		name   string
		encode func([]byte) string
		decode func(string) ([]byte, error)
	}{
		{"hex", hex.EncodeToString, hex.DecodeString},
		{"base64", base64.StdEncoding.EncodeToString, decodeBase64(base64.StdEncoding)},
		{"base64url", base64.RawURLEncoding.EncodeToString, decodeBase64(base64.URLEncoding)},
	} {
		c := c
		t.RawSetString(c.name+"_encode", L.NewFunction(func(L *lua.LState) int {
			src := L.CheckString(1)
			s.charge(L, 3*len(src)) // the copy and the encoding (at most twice as long)
			L.Push(lua.LString(c.encode([]byte(src))))
			return 1
		}))
		t.RawSetString(c.name+"_decode", L.NewFunction(func(L *lua.LState) int {
			src := L.CheckString(1)
			s.charge(L, len(src))
			b, err := c.decode(src)
			if err != nil {
				L.RaiseError("encoding.%s_decode: %v", c.name, err)
			}
			L.Push(lua.LString(b))
			return 1
		}))
	}
	return t
}

// decodeBase64 decodes padded or unpadded input of padded's alphabet.
func decodeBase64(padded *base64.Encoding) func(string) ([]byte, error) {
	raw := padded.WithPadding(base64.NoPadding)
	return func(s string) ([]byte, error) {
		if len(s)%4 == 0 {
			return padded.DecodeString(s)
		}
		return raw.DecodeString(s)
	}
}
