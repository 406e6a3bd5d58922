#!/usr/bin/env bash
# sqlite3 on workload.sql: output with lwmalloc identical to the glibc run.
source "$(dirname "$0")/e2e_lib.sh"

timeout 120 sqlite3 "$WORK/glibc.db" <"$E2E_DIR/workload.sql" >"$WORK/glibc.out" 2>&1 || fail "sqlite3 failed under glibc"
timeout 120 env LD_PRELOAD="$LWLIB" LW_STATS=1 sqlite3 "$WORK/lw.db" <"$E2E_DIR/workload.sql" >"$WORK/lw.out" 2>"$WORK/lw.err" \
  || { cat "$WORK/lw.err" >&2; fail "sqlite3 failed under lwmalloc"; }
expect_stats "$WORK/lw.err"
diff -u "$WORK/glibc.out" "$WORK/lw.out" >&2 || fail "sqlite3 output differs between glibc and lwmalloc"
[ "$(wc -l <"$WORK/lw.out")" -ge 20 ] || fail "sqlite3 output too short"
pass "sqlite3 workload: $(wc -l <"$WORK/lw.out") identical lines"
