package main

import (
	"fmt"
	"slices"
	"strings"

	"luamods/engine"
)

// whatNow is the short "what now" note serve prints once it listens: a
// route to try, where the admin API is (or why it is off), and how to
// reload. copied is set when the shipped default runs from a temporary
// copy, where editing scripts/ changes nothing.
func whatNow(gen *engine.Generation, addr string, pid int, copied bool) string {
	base := "http://" + addr
	var b strings.Builder
	fmt.Fprintf(&b, "luamods is serving on %s (pid %d).\n", base, pid)
	for _, r := range gen.Routes() {
		if r.Methods == nil || slices.Contains(r.Methods, "GET") {
			fmt.Fprintf(&b, "  try:    curl %s%s\n", base, r.Path)
			break
		}
	}
	if gen.Config.AdminToken != "" {
		fmt.Fprintf(&b, "  admin:  %s/_luamods/v1/ (Authorization: Bearer <admin token>), e.g. POST %s/_luamods/v1/invoke/spam_checker/user_may_invite\n", base, base)
	} else {
		b.WriteString("  admin:  off (the invoke API answers 404): set admin_token_file in the configuration to turn it on\n")
	}
	fmt.Fprintf(&b, "  reload: kill -HUP %d, after editing %s or its modules", pid, gen.Config.Path)
	if copied {
		b.WriteString("\n  note:   this is a temporary copy of the shipped examples; to edit them, run: luamods serve -c scripts/luamods.yaml")
	}
	return b.String()
}
