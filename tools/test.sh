#!/usr/bin/env bash
# Runs every test: go vet, the Go tests with the race detector (they start
# their own redis-server and luamods processes on loopback), and the example
# modules' Lua tests through `luamods test`. Installs redis-server first when
# it is missing and this user can (root with apt-get), and Dendrite (the
# homeserver of the Matrix tests) into ~/.cache/luamods when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing redis-server"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    echo "== redis-server is missing: the Redis fan-out tests will be skipped" >&2
  fi
fi

# Dendrite, the real homeserver of the Matrix tests: built once from the Go
# module proxy into a cache folder and reused (a cold build takes minutes).
DENDRITE_VERSION=v0.13.8
export LUAMODS_DENDRITE_BIN="${LUAMODS_DENDRITE_BIN:-$HOME/.cache/luamods/dendrite-$DENDRITE_VERSION}"
dendrite_missing=0
for b in dendrite generate-keys generate-config create-account; do
  [ -x "$LUAMODS_DENDRITE_BIN/$b" ] || dendrite_missing=1
done
if [ "$dendrite_missing" = 1 ]; then
  echo "== installing Dendrite $DENDRITE_VERSION into $LUAMODS_DENDRITE_BIN (once; several minutes)"
  mkdir -p "$LUAMODS_DENDRITE_BIN"
  if ! GOBIN="$LUAMODS_DENDRITE_BIN" CGO_ENABLED=1 go install \
      github.com/matrix-org/dendrite/cmd/{dendrite,generate-keys,generate-config,create-account}@"$DENDRITE_VERSION"; then
    echo "== Dendrite could not be built: the tests against a real homeserver will be skipped (and fail under CI=true)" >&2
  fi
fi

# PostgreSQL 15 for the storage tests: they start their own cluster from
# these binaries (as nobody when run as root) in a temporary folder.
PG_BIN="${LUAMODS_PG_BIN:-/usr/lib/postgresql/15/bin}"
if [ ! -x "$PG_BIN/postgres" ] && ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing postgresql"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    echo "== PostgreSQL is missing ($PG_BIN): the PostgreSQL tests will be skipped" >&2
  fi
fi

# Every step runs even when an earlier one fails; the script fails if any did.
failed=()
step() {
  local name=$1
  shift
  echo "== $name"
  if ! "$@"; then
    failed+=("$name")
  fi
}

step "go vet" go vet ./...
step "go test -race" go test -race -timeout 15m ./...
# Every attack of issue 11 against a real luamods serve under ulimit -v 8 GiB.
step "attacks on a real server" env LUAMODS_ATTACK_TEST=1 go test -count=1 -run TestAttacksAgainstARealServer -v ./cmd/luamods
if [ -d scripts ] && ls scripts/*_test.lua >/dev/null 2>&1; then
  step "luamods test (example modules)" go run ./cmd/luamods test scripts
fi
if [ ${#failed[@]} -gt 0 ]; then
  printf '== FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "== all passed"
