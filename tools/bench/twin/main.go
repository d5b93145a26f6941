// Command twin serves the routes of tools/bench/compare.sh written
// natively in echo: the yardstick the Lua routes are compared with.
//
//	GET  /_synapse/client/hello?name=   the twin of examples/embedded/hello.lua
//	POST /bench/realistic               the twin of tools/bench/realistic.lua
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"unicode"

	"github.com/labstack/echo/v4"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8010", "address to listen on")
	flag.Parse()
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/_synapse/client/hello", hello)
	e.POST("/bench/realistic", realistic)
	if err := e.Start(*listen); err != nil {
		fmt.Fprintln(os.Stderr, "twin:", err)
		os.Exit(1)
	}
}

// hello answers {"message": "hello, <name>"}.
func hello(c echo.Context) error {
	name := c.QueryParam("name")
	if name == "" {
		name = "world"
	}
	return c.JSON(http.StatusOK, map[string]any{"message": "hello, " + name})
}

// banned is realistic.lua's banned-word set.
var banned = map[string]bool{
	"viagra": true, "casino": true, "lottery": true, "bitcoin": true, "prize": true,
	"winner": true, "free": true, "offer": true, "loan": true, "crypto": true,
}

// document is the realistic route's request body.
type document struct {
	Text string   `json:"text"`
	Tags []string `json:"tags"`
}

// realistic lower-cases the text, counts its words (runs of letters, as
// Lua's %a+) and the banned ones, and upper-cases the tags.
func realistic(c echo.Context) error {
	var doc document
	if err := c.Bind(&doc); err != nil {
		return c.JSON(http.StatusBadRequest, map[string]any{"errcode": "M_NOT_JSON", "error": "Content not JSON."})
	}
	text := strings.ToLower(doc.Text)
	words, hits := 0, 0
	for _, word := range strings.FieldsFunc(text, func(r rune) bool { return r > unicode.MaxASCII || !unicode.IsLetter(r) }) {
		words++
		if banned[word] {
			hits++
		}
	}
	tags := make([]string, len(doc.Tags))
	for i, tag := range doc.Tags {
		tags[i] = strings.ToUpper(tag)
	}
	return c.JSON(http.StatusOK, map[string]any{"words": words, "banned": hits, "tags": tags})
}
