package luaapi

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestWithoutModule(t *testing.T) {
	se := &ScriptError{Module: "spam.lua", Source: "spam.lua", Line: 3, Message: "boom"}
	cases := []struct {
		err  error
		want string
	}{
		{se, "spam.lua:3: boom"},
		{fmt.Errorf("M.restore: %w", se), "M.restore: spam.lua:3: boom"},
		{&ScriptError{Source: "x.lua", Line: 1, Message: "no module"}, "x.lua:1: no module"},
		{errors.New("plain"), "plain"},
	}
	for _, c := range cases {
		if got := WithoutModule(c.err); got != c.want {
			t.Errorf("WithoutModule(%q) = %q, want %q", c.err, got, c.want)
		}
	}
}

// TestLongTextIsClippedForTheLog: a module's 128 KiB error message or print
// line reaches the log as its first maxLogText bytes and its length.
func TestLongTextIsClippedForTheLog(t *testing.T) {
	var log bytes.Buffer
	s, _ := newTestStateTimeout(t, apiModule(`
	  local s = string.rep("é", 2^16)
	  if ... == "print" then print(s) return end
	  error(s)`), &Env{Logger: slog.New(slog.NewTextHandler(&log, nil))}, time.Hour)
	_, err := callRun(t, s, "error")
	var se *ScriptError
	if !errors.As(err, &se) || len(se.Message) > maxLogText+64 || !strings.HasSuffix(se.Message, "... (131072 bytes in all)") ||
		!utf8.ValidString(se.Message) || se.Where() == "" {
		t.Fatalf("error: %d bytes, ends %q, at %q", len(err.Error()), err.Error()[max(0, len(err.Error())-40):], se.Where())
	}
	if _, err := callRun(t, s, "print"); err != nil {
		t.Fatal(err)
	}
	if log.Len() > maxLogText+512 || !strings.Contains(log.String(), "... (131072 bytes in all)") {
		t.Fatalf("print logged %d bytes: %.200q", log.Len(), log.String())
	}
}
