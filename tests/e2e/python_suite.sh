#!/usr/bin/env bash
# A quick subset of CPython's own test suite (Debian package
# libpython3.11-testsuite) with lwmalloc preloaded and PYTHONMALLOC=malloc
# (child interpreters that tests start inherit both).
source "$(dirname "$0")/e2e_lib.sh"
PY=/usr/bin/python3
export PYTHONMALLOC=malloc PYTHONDONTWRITEBYTECODE=1
TESTS=(test_dict test_list test_set test_tuple test_json test_string test_bytes test_collections
       test_deque test_heapq test_sort test_re test_unicode)

"$PY" -c 'import test.test_dict' 2>/dev/null || fail "CPython test suite not installed (package libpython3.11-testsuite)"
cd "$WORK"
# LW_STATS is not set here: some of these tests require an empty stderr
# from child interpreters. The interpreter checks its own maps instead.
RUN='import sys
if "liblwmalloc" not in open("/proc/self/maps").read():
    sys.exit("liblwmalloc is not mapped in this interpreter")
from test.libregrtest.main import main
main()'
timeout 300 env LD_PRELOAD="$LWLIB" "$PY" -c "$RUN" -q "${TESTS[@]}" >"$WORK/out" 2>"$WORK/err" \
  || { tail -40 "$WORK/out" >&2; tail -20 "$WORK/err" >&2; fail "CPython tests failed under lwmalloc"; }
grep -q 'Tests result: SUCCESS' "$WORK/out" || { tail -20 "$WORK/out" >&2; fail "no SUCCESS line"; }
pass "CPython ${#TESTS[@]} test modules under lwmalloc"
