#!/usr/bin/env bash
# redis-server with lwmalloc preloaded on a free 127.0.0.1 port: answers
# redis-benchmark -n 20000 and a data round trip, then shuts down cleanly.
# (Debian's redis links libjemalloc but calls the plain malloc names, so
# the preloaded allocator serves it; jemalloc's mallctl stays for stats.)
source "$(dirname "$0")/e2e_lib.sh"

PORT="$(free_port)"
cli() { timeout 20 redis-cli -h 127.0.0.1 -p "$PORT" "$@"; }

env LD_PRELOAD="$LWLIB" LW_STATS=1 redis-server --port "$PORT" --bind 127.0.0.1 \
  --save '' --appendonly no --daemonize no --dir "$WORK" >"$WORK/redis.out" 2>"$WORK/redis.err" &
SERVER=$!
PIDS_TO_KILL+=("$SERVER")
wait_for "redis-server to answer PING" 20 sh -c "redis-cli -h 127.0.0.1 -p $PORT ping | grep -q PONG"
expect_mapped "$SERVER"

timeout 180 redis-benchmark -h 127.0.0.1 -p "$PORT" -n 20000 -q >"$WORK/bench.out" 2>&1 || { tail "$WORK/bench.out" >&2; fail "redis-benchmark failed or timed out"; }
tr '\r' '\n' <"$WORK/bench.out" | grep 'requests per second' | grep -v 'rps=' >"$WORK/bench.txt" || true
[ "$(wc -l <"$WORK/bench.txt")" -ge 10 ] || { cat "$WORK/bench.out" >&2; fail "redis-benchmark reported too few results"; }

# Data round trip: values of many sizes survive.
for n in 1 100 1000 10000 100000; do
  v="$(head -c "$n" /dev/zero | tr '\0' x)"
  cli set "k$n" "$v" >/dev/null
  [ "$(cli strlen "k$n")" = "$n" ] || fail "value of $n bytes did not round-trip"
done
cli rpush list $(seq 1 500) >/dev/null
[ "$(cli llen list)" = 500 ] || fail "list length"
kill -0 "$SERVER" || fail "redis-server died"

cli shutdown nosave >/dev/null 2>&1 || true
wait_exit "$SERVER" 20 || fail "redis-server exited with an error"
expect_stats "$WORK/redis.err"
grep -q 'ready to exit' "$WORK/redis.out" || { tail "$WORK/redis.out" >&2; fail "redis-server did not shut down cleanly"; }
pass "redis-server: $(wc -l <"$WORK/bench.txt") benchmark tests, e.g. $(head -1 "$WORK/bench.txt")"
