// Package httpbridge serves a luamods engine over HTTP with echo: the
// modules' web resources, the admin API under /_luamods/v1 (bearer token),
// /metrics and /health. The daemon (`luamods serve`) and embedding servers
// mount the same handlers.
package httpbridge
