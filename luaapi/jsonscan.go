package luaapi

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// DefaultMaxJSONNodes is how many JSON values and object keys a request
// body may hold when Env.MaxJSONNodes is zero (max_request_json_nodes).
// BenchmarkJSONNodeCost measures what a node costs once decoded into Lua.
const DefaultMaxJSONNodes = 100000

// jsonNodeCost is what one JSON node costs at most once decoded into Lua,
// in bytes allocated, besides the bytes of its text. BenchmarkJSONNodeCost
// measured 105 B/node for an array of numbers, 211 for an object's keys, 199
// for empty arrays and 272 for small objects ({"a":0}: 3 nodes) since
// tables are built in one step (89, 151, 247 and 272 before: the members
// gathered first cost bytes, the tables built at their size cost fewer).
const jsonNodeCost = 288

// jsonCost is what decoding data of shape sh into Lua may allocate.
func jsonCost(data []byte, sh JSONShape) int {
	return len(data) + sh.Nodes*jsonNodeCost
}

func (s *State) maxJSONNodes() int {
	if n := s.opts.Env.MaxJSONNodes; n > 0 {
		return n
	}
	return DefaultMaxJSONNodes
}

// IsJSONContentType reports whether a Content-Type header names JSON:
// application/json or a +json type, with or without parameters.
func IsJSONContentType(contentType string) bool {
	mediaType, _, _ := strings.Cut(contentType, ";")
	mediaType = strings.ToLower(strings.TrimSpace(mediaType))
	return mediaType == "application/json" || strings.HasSuffix(mediaType, "+json")
}

// ErrJSONTooLarge is the cause of refusing JSON with more nodes than its
// budget allows (max_request_json_nodes).
var ErrJSONTooLarge = errors.New("too many JSON values")

// ErrJSONTooDeep is the cause of refusing JSON that nests arrays and
// objects deeper than MaxDepth.
var ErrJSONTooDeep = errors.New("JSON nested too deeply")

// JSONShape is the structure of a JSON text as ScanJSON counts it.
type JSONShape struct {
	// Nodes counts values and object keys: an array or object, a string,
	// a number, a literal. It is the number of Lua values decoding makes.
	Nodes int
	// Depth is the most arrays and objects open at once (0 for a bare
	// scalar, 1 for [1,2]).
	Depth int
}

// ScanJSON measures data's structure in one pass, without allocating and
// without checking the grammar: invalid input gets a count too (a run of
// bytes outside strings and punctuation is one node), and decoding is what
// rejects it. Quotes and brackets inside strings, escaped quotes included,
// are not structure.
func ScanJSON(data []byte) JSONShape {
	return scanJSON(data, len(data))
}

// scanJSON is ScanJSON stopping as soon as it has counted more than
// maxNodes nodes.
func scanJSON(data []byte, maxNodes int) JSONShape {
	var sh JSONShape
	depth := 0
	for i := 0; i < len(data) && sh.Nodes <= maxNodes; i++ {
		switch data[i] {
		case ' ', '\t', '\n', '\r', ',', ':':
		case '[', '{':
			sh.Nodes++
			depth++
			sh.Depth = max(sh.Depth, depth)
		case ']', '}':
			depth = max(depth-1, 0)
		case '"':
			sh.Nodes++
			i = stringEnd(data, i+1)
		default:
			sh.Nodes++
			for i+1 < len(data) && !jsonDelimiter(data[i+1]) {
				i++
			}
		}
	}
	return sh
}

// stringEnd is the index of the quote that closes the string whose text
// starts at i (len(data) when it is not closed).
func stringEnd(data []byte, i int) int {
	for i < len(data) {
		j := bytes.IndexAny(data[i:], `"\`)
		if j < 0 {
			return len(data)
		}
		i += j
		if data[i] == '"' {
			return i
		}
		i += 2 // a backslash and the byte it escapes
	}
	return len(data)
}

func jsonDelimiter(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', ',', ':', '[', ']', '{', '}', '"':
		return true
	}
	return false
}

// CheckJSON refuses data before it is decoded when it holds more than
// maxNodes nodes (ErrJSONTooLarge) or nests deeper than MaxDepth
// (ErrJSONTooDeep). The errors name the budget. It reads no further than
// the node past the budget, and returns data's shape.
func CheckJSON(data []byte, maxNodes int) (JSONShape, error) {
	sh := scanJSON(data, maxNodes)
	if sh.Nodes > maxNodes {
		return sh, fmt.Errorf("%w: more than %d values and keys (max_request_json_nodes)", ErrJSONTooLarge, maxNodes)
	}
	return sh, sh.depthError()
}

// depthError is ErrJSONTooDeep, with the depth, when sh nests deeper than
// MaxDepth.
func (sh JSONShape) depthError() error {
	if sh.Depth > MaxDepth {
		return fmt.Errorf("%w: %d levels of arrays and objects, over the limit of %d", ErrJSONTooDeep, sh.Depth, MaxDepth)
	}
	return nil
}
