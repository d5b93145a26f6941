package storage

import (
	"strconv"
	"strings"
)

// numberPlaceholders rewrites the `?` placeholders of query to PostgreSQL's
// $1, $2, …, leaving alone a `?` inside a quoted string, a quoted
// identifier, a dollar-quoted string or a comment.
func numberPlaceholders(query string) string {
	if !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'' || c == '"':
			end := closing(query, i+1, string(c))
			b.WriteString(query[i:end])
			i = end - 1
		case c == '-' && i+1 < len(query) && query[i+1] == '-':
			end := closing(query, i+2, "\n")
			b.WriteString(query[i:end])
			i = end - 1
		case c == '/' && i+1 < len(query) && query[i+1] == '*':
			end := closing(query, i+2, "*/")
			b.WriteString(query[i:end])
			i = end - 1
		case c == '$' && dollarTag(query[i:]) != "":
			tag := dollarTag(query[i:])
			end := closing(query, i+len(tag), tag)
			b.WriteString(query[i:end])
			i = end - 1
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// closing returns the index just past the first end at or after from (a
// doubled quote inside a quoted string is part of it), or len(s).
func closing(s string, from int, end string) int {
	for i := from; i < len(s); i++ {
		if strings.HasPrefix(s[i:], end) {
			if (end == "'" || end == `"`) && i+1 < len(s) && s[i+1] == end[0] {
				i++ // '' inside '...'
				continue
			}
			return i + len(end)
		}
	}
	return len(s)
}

// dollarTag returns the opening tag ($$ or $name$) of a dollar-quoted string
// at the start of s, or "".
func dollarTag(s string) string {
	for i := 1; i < len(s); i++ {
		c := s[i]
		if c == '$' {
			return s[:i+1]
		}
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 1 && c >= '0' && c <= '9') {
			return ""
		}
	}
	return ""
}
