# Shared helpers for the end-to-end tests (sourced, not run).
# Every test runs a real program with liblwmalloc.so preloaded and checks
# that lwmalloc really was the allocator: LW_STATS=1 makes it print its
# statistics at exit, starting with a line "lwmalloc stats", on stderr.
set -euo pipefail

LWLIB="${1:?usage: $0 /path/to/liblwmalloc.so}"
LWLIB="$(readlink -f "$LWLIB")"
E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/lw-e2e.XXXXXX")"
PIDS_TO_KILL=()

cleanup() {
  local pid
  for pid in "${PIDS_TO_KILL[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# On failure, the tail of every captured stderr and log helps the diagnosis.
fail() {
  local f
  echo "FAIL: $*" >&2
  for f in "$WORK"/*.err "$WORK"/*.log; do
    [ -s "$f" ] || continue
    echo "--- tail of $(basename "$f"):" >&2
    tail -n 8 "$f" >&2
  done
  echo "0 passed, 1 failed"
  exit 1
}
pass() { echo "PASS: $*"; echo "1 passed, 0 failed"; exit 0; }

[ -f "$LWLIB" ] || fail "no allocator library at $LWLIB"

# Runs a command with lwmalloc preloaded and statistics on.
with_lw() { env LD_PRELOAD="$LWLIB" LW_STATS=1 "$@"; }

# Checks that a stderr capture holds lwmalloc's exit statistics.
expect_stats() {
  grep -q '^lwmalloc stats' "$1" || { echo "--- stderr ($1):" >&2; tail -20 "$1" >&2; fail "no 'lwmalloc stats' in $1: lwmalloc was not loaded, or did not report at exit"; }
}

# Checks that a running process has liblwmalloc mapped.
expect_mapped() {
  grep -q liblwmalloc "/proc/$1/maps" || fail "process $1 does not map liblwmalloc"
}

# Prints a TCP port on 127.0.0.1 that is free right now.
free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits up to $2 seconds for the command "$3..." to succeed.
wait_for() {
  local what="$1" secs="$2"
  shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || fail "timed out waiting for $what"
    sleep 0.1
  done
}

# Waits up to $2 seconds for process $1 to exit; returns its status.
wait_exit() {
  local pid="$1" secs="$2" deadline=$((SECONDS + $2))
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      kill -9 "$pid" 2>/dev/null || true
      fail "process $pid did not exit within ${secs}s"
    fi
    sleep 0.1
  done
  wait "$pid"
}
