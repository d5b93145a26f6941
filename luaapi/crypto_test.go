package luaapi

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
)

func TestCryptoMatchesGo(t *testing.T) {
	bin := "\x00\xffbinary\x80"
	hmac256 := func(k, m string) string {
		h := hmac.New(sha256.New, []byte(k))
		h.Write([]byte(m))
		return string(h.Sum(nil))
	}
	hmac512 := func(k, m string) string {
		h := hmac.New(sha512.New, []byte(k))
		h.Write([]byte(m))
		return string(h.Sum(nil))
	}
	sum256 := sha256.Sum256([]byte(bin))
	sum512 := sha512.Sum512([]byte(""))
	for _, c := range []struct {
		expr, a, b string
		want       any
	}{
		{"api.crypto.sha256(a)", bin, "", string(sum256[:])},
		{"api.crypto.sha512(a)", "", "", string(sum512[:])},
		{"api.crypto.hmac_sha256(a, b)", "secret", "message", hmac256("secret", "message")},
		{"api.crypto.hmac_sha256(a, b)", "", bin, hmac256("", bin)},
		{"api.crypto.hmac_sha512(a, b)", "k", "m", hmac512("k", "m")},
		{"api.crypto.constant_time_equal(a, b)", "abc", "abc", true},
		{"api.crypto.constant_time_equal(a, b)", "abc", "abd", false},
		{"api.crypto.constant_time_equal(a, b)", "abc", "abcd", false},
		{"api.crypto.constant_time_equal(a, b)", "", "", true},
		{"#api.crypto.random_bytes(16)", "", "", int64(16)},
		{"#api.crypto.random_token()", "", "", int64(43)},
		{"#api.crypto.random_token(3)", "", "", int64(4)},
		{"api.encoding.hex_encode(a)", bin, "", hex.EncodeToString([]byte(bin))},
		{"api.encoding.hex_decode(a)", "00ff41", "", "\x00\xffA"},
		{"api.encoding.base64_encode(a)", bin, "", base64.StdEncoding.EncodeToString([]byte(bin))},
		{"api.encoding.base64_decode(a)", "AP8=", "", "\x00\xff"},
		{"api.encoding.base64_decode(a)", "AP8", "", "\x00\xff"},
		{"api.encoding.base64url_encode(a)", "\xfb\xff", "", "-_8"},
		{"api.encoding.base64url_decode(a)", "-_8=", "", "\xfb\xff"},
		{"api.encoding.hex_encode(api.crypto.hmac_sha256(a, b))", "key", "The quick brown fox jumps over the lazy dog",
			"f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"},
	} {
		s, _ := newTestState(t, apiModule("local a, b = ... return "+c.expr), nil)
		got, err := s.Call(context.Background(), "cb:spam_checker.run", c.a, c.b)
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		if got[0] != c.want {
			t.Errorf("%s(%q, %q) = %q, want %q", c.expr, c.a, c.b, got[0], c.want)
		}
	}
}

func TestCryptoRefusesBadInput(t *testing.T) {
	for _, c := range []struct{ expr, want string }{
		{"api.crypto.random_bytes(0)", "n must be between 1 and 65536, not 0"},
		{"api.crypto.random_token(65537)", "n must be between 1 and 65536, not 65537"},
		{"api.crypto.random_bytes()", "number expected"},
		{"api.encoding.hex_decode('zz')", "encoding.hex_decode: encoding/hex: invalid byte"},
		{"api.encoding.base64_decode('!!!!')", "encoding.base64_decode: illegal base64 data"},
	} {
		s, _ := newTestState(t, apiModule("return "+c.expr), nil)
		_, err := s.Call(context.Background(), "cb:spam_checker.run")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.expr, err, c.want)
		}
	}
	s, _ := newTestState(t, apiModule(`local t = api.crypto.random_token(24)
    return t ~= api.crypto.random_token(24), t:match("^[%w_-]+$") ~= nil`), nil)
	got, err := s.Call(context.Background(), "cb:spam_checker.run")
	if err != nil || got[0] != true || got[1] != true {
		t.Errorf("two tokens are equal or not URL-safe: %v %v", got, err)
	}
}
