#!/usr/bin/env bash
# The README's "main job": lwmalloc on a real program, end to end.
#
#   bash bench/demo.sh
#
# 1. installs the Debian packages (.ci/deps.sh) and builds (build/, Release);
# 2. runs sqlite3 on the bundled workload (tests/e2e/workload.sql, scaled to
#    DEMO_ROWS rows, default 200000) under glibc and with
#    LD_PRELOAD=build/lib/liblwmalloc.so LW_STATS=1, and prints wall time,
#    peak RSS and output equality side by side, then lwmalloc's statistics;
# 3. when build/tracer/lwtrace and build/replay/lwreplay exist, records the
#    same sqlite3 run with `lwtrace record` and replays the trace with
#    `lwreplay TRACE --compare=lw,glibc[,mimalloc,jemalloc,tcmalloc] --touch`
#    (the peers that are installed), and prints that comparison.
#
# Environment: DEMO_ROWS (workload size), DEMO_RUNS (replay runs per
# allocator, default 5: a 100 ms replay moves by 10-20 % from run to run
# on a shared machine), BUILD_DIR (default build).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
BUILD_DIR="${BUILD_DIR:-build}"
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$root/$BUILD_DIR" ;; esac
ROWS="${DEMO_ROWS:-200000}"
RUNS="${DEMO_RUNS:-5}"
LWLIB="$BUILD_DIR/lib/liblwmalloc.so"
LWTRACE="$BUILD_DIR/tracer/lwtrace"
LWREPLAY="$BUILD_DIR/replay/lwreplay"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/lw-demo.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

section() { printf '\n=== %s ===\n' "$*"; }

section "dependencies"
bash "$root/.ci/deps.sh"

section "build ($BUILD_DIR, Release)"
cmake -S "$root" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >"$WORK/configure.log" 2>&1 \
  || { cat "$WORK/configure.log"; exit 1; }
# The allocator first: the demo's core needs only it; the tools are a bonus.
cmake --build "$BUILD_DIR" -j "$(nproc)" --target lwmalloc >"$WORK/build.log" 2>&1 \
  || { tail -40 "$WORK/build.log"; exit 1; }
cmake --build "$BUILD_DIR" -j "$(nproc)" >>"$WORK/build.log" 2>&1 \
  || echo "note: the full build failed (tools may be missing); see below"
echo "liblwmalloc: $LWLIB"

# The workload: the end-to-end test's SQL script with more rows.
sed "s/WHERE i < 60000)/WHERE i < $ROWS)/" "$root/tests/e2e/workload.sql" >"$WORK/workload.sql"
grep -q "WHERE i < $ROWS)" "$WORK/workload.sql" || { echo "could not scale the workload"; exit 1; }

# run LABEL [env...]: sqlite3 on a fresh database; writes LABEL.out,
# LABEL.err and LABEL.time ("wall_seconds max_rss_kib").
run() {
  local label="$1"
  shift
  rm -f "$WORK/$label.db"
  env "$@" /usr/bin/time -o "$WORK/$label.time" -f '%e %M' \
    timeout 600 sqlite3 "$WORK/$label.db" ".read $WORK/workload.sql" >"$WORK/$label.out" 2>"$WORK/$label.err"
}

section "sqlite3: $ROWS-row workload, glibc vs lwmalloc"
run glibc
run lw LD_PRELOAD="$LWLIB" LW_STATS=1
read -r g_wall g_rss <"$WORK/glibc.time"
read -r l_wall l_rss <"$WORK/lw.time"
same=no
cmp -s "$WORK/glibc.out" "$WORK/lw.out" && same=yes
printf '%-22s %14s %14s\n' "" glibc lwmalloc
printf '%-22s %14s %14s\n' "wall time (s)" "$g_wall" "$l_wall"
printf '%-22s %14s %14s\n' "peak RSS (KiB)" "$g_rss" "$l_rss"
printf '%-22s %14s %14s\n' "output lines" "$(wc -l <"$WORK/glibc.out")" "$(wc -l <"$WORK/lw.out")"
echo "identical output: $same"
awk -v g="$g_wall" -v l="$l_wall" -v gr="$g_rss" -v lr="$l_rss" 'BEGIN {
  if (g > 0) printf "lwmalloc time / glibc time: %.2f\n", l / g;
  if (gr > 0) printf "lwmalloc RSS  / glibc RSS:  %.2f\n", lr / gr }'

section "lwmalloc statistics at exit (LW_STATS=1)"
if grep -q '^lwmalloc stats' "$WORK/lw.err"; then
  sed -n '/^lwmalloc stats/,$p' "$WORK/lw.err"
else
  echo "(no statistics printed: was lwmalloc loaded?)"
  cat "$WORK/lw.err"
fi
[ "$same" = yes ] || { echo "ERROR: sqlite3 output differs under lwmalloc"; exit 1; }

if [ -x "$LWTRACE" ] && [ -x "$LWREPLAY" ]; then
  section "trace: lwtrace record -- sqlite3"
  rm -f "$WORK/trace.db"
  timeout 900 "$LWTRACE" record -o "$WORK/sqlite.lwt" -- \
    sqlite3 "$WORK/trace.db" ".read $WORK/workload.sql" >"$WORK/trace.out" 2>"$WORK/trace.err" \
    || { tail -20 "$WORK/trace.err"; echo "lwtrace record failed"; exit 1; }
  cmp -s "$WORK/glibc.out" "$WORK/trace.out" || echo "warning: traced sqlite3 output differs"
  ls -l "$WORK/sqlite.lwt" | awk '{ printf "trace: %s bytes\n", $5 }'
  "$LWTRACE" info "$WORK/sqlite.lwt" || true

  # The peers that are installed (lwreplay loads them by soname).
  # (ldconfig's list goes to a file first: `ldconfig -p | grep -q` under
  # pipefail fails whenever grep stops reading early)
  allocators="lw,glibc"
  ldconfig -p >"$WORK/ldconfig.txt"
  for peer in mimalloc:libmimalloc.so.2 jemalloc:libjemalloc.so.2 tcmalloc:libtcmalloc_minimal.so.4; do
    if grep -q "${peer#*:}" "$WORK/ldconfig.txt"; then allocators="$allocators,${peer%%:*}"; fi
  done
  # --touch: the replay writes every requested byte, as sqlite3 did. Without
  # it RSS counts only the pages each allocator writes itself, and the page
  # faults of new memory are charged to allocators that write headers into
  # it (lw, glibc) but to nobody for those that keep metadata elsewhere.
  section "replay: lwreplay --compare=$allocators --runs $RUNS --touch"
  timeout 1200 "$LWREPLAY" "$WORK/sqlite.lwt" --compare="$allocators" --runs "$RUNS" --touch
else
  section "trace and replay"
  echo "skipped: $LWTRACE and $LWREPLAY are not both built"
fi
