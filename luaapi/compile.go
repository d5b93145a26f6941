package luaapi

import (
	"errors"
	"fmt"
	"os"
	"strings"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"
)

// Compile parses and compiles Lua source. name becomes the chunk name, so
// every error and traceback of the code reads "name:line:". The result is
// immutable and may be shared by any number of states.
func Compile(src, name string) (*lua.FunctionProto, error) {
	chunk, err := parse.Parse(strings.NewReader(src), name)
	if err != nil {
		return nil, &SyntaxError{Source: name, Err: err, lines: strings.Count(strings.TrimRight(src, "\n"), "\n") + 1}
	}
	if chunk == nil {
		return nil, &SyntaxError{Source: name, Err: fmt.Errorf("the parser gave up")}
	}
	proto, err := lua.Compile(chunk, name)
	if err != nil {
		return nil, &SyntaxError{Source: name, Err: err}
	}
	trimProto(proto)
	return proto, nil
}

// trimProto copies the slices of proto and of the functions inside it to
// their exact length. gopher-lua's compiler leaves every function's code
// and line slices at a capacity of 1024 or more (12 KB a function, most of
// a small script's compiled size), and a proto lives as long as its module.
func trimProto(p *lua.FunctionProto) {
	p.Code = exact(p.Code)
	p.DbgSourcePositions = exact(p.DbgSourcePositions)
	p.Constants = exact(p.Constants)
	p.DbgLocals = exact(p.DbgLocals)
	p.DbgCalls = exact(p.DbgCalls)
	p.DbgUpvalues = exact(p.DbgUpvalues)
	p.FunctionPrototypes = exact(p.FunctionPrototypes)
	for _, f := range p.FunctionPrototypes {
		trimProto(f)
	}
}

// exact returns a copy of s whose capacity is its length (nil if empty).
func exact[T any](s []T) []T {
	if cap(s) == len(s) {
		return s
	}
	if len(s) == 0 {
		return nil
	}
	c := make([]T, len(s))
	copy(c, s)
	return c
}

// CompileFile reads and compiles the Lua file at path, named by path.
func CompileFile(path string) (*lua.FunctionProto, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Compile(string(src), path)
}

// SyntaxError is a script that does not compile.
type SyntaxError struct {
	Source string
	Err    error
	lines  int // of the source, to place errors at the end of the file
}

// Error is "file:line: syntax error ...".
func (e *SyntaxError) Error() string {
	if pe := (*parse.Error)(nil); errors.As(e.Err, &pe) {
		if pe.Pos.Line == parse.EOF {
			return fmt.Sprintf("%s:%d: syntax error: unexpected end of file (an unclosed function, block, table or string?)", e.Source, e.lines)
		}
		return fmt.Sprintf("%s:%d: syntax error near '%s' (column %d)", e.Source, pe.Pos.Line, pe.Token, pe.Pos.Column)
	}
	if ce := (*lua.CompileError)(nil); errors.As(e.Err, &ce) {
		return fmt.Sprintf("%s:%d: %s", e.Source, ce.Line, ce.Message)
	}
	return fmt.Sprintf("%s: %v", e.Source, e.Err)
}

// Unwrap returns the parser's or compiler's error.
func (e *SyntaxError) Unwrap() error { return e.Err }

func mustCompile(src, name string) *lua.FunctionProto {
	p, err := Compile(src, name)
	if err != nil {
		panic(err)
	}
	return p
}

// preludeProto is immutable once compiled and shared by every state.
var preludeProto = mustCompile(preludeSource, "=luamods")
