#!/usr/bin/env bash
# python3 on workload.py (PYTHONMALLOC=malloc: every object through the
# C allocator): output with lwmalloc identical to the glibc run.
source "$(dirname "$0")/e2e_lib.sh"
PY=/usr/bin/python3
export PYTHONMALLOC=malloc PYTHONDONTWRITEBYTECODE=1

timeout 120 "$PY" "$E2E_DIR/workload.py" >"$WORK/glibc.out" 2>&1 || fail "python3 failed under glibc"
timeout 120 env LD_PRELOAD="$LWLIB" LW_STATS=1 "$PY" "$E2E_DIR/workload.py" >"$WORK/lw.out" 2>"$WORK/lw.err" \
  || { tail -30 "$WORK/lw.err" >&2; fail "python3 failed under lwmalloc"; }
expect_stats "$WORK/lw.err"
diff -u "$WORK/glibc.out" "$WORK/lw.out" >&2 || fail "python3 output differs between glibc and lwmalloc"
grep -qx done "$WORK/lw.out" || fail "workload did not finish"
pass "python3 workload: identical output"
