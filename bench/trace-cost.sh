#!/bin/sh
# What each step of a recorded call costs. ./tw 1 (bench/trace-tw.c: 2 M
# mallocs and 2 M frees on one thread) under `lwtrace record --no-stacks`,
# timed by the worker's own CPU, with the recorder built from this tree
# three ways in a scratch directory:
#   base   as it is;
#   cut    with trace-cost.patch: LW_TRACE_CUT=1|2|3 ends _lw_trace_call
#          after entering the recorder (busy flag, epoch; a free's floor
#          and key are taken in _lw_trace_enter) | after an allocation's
#          floor and key | after the key's conversion to the time;
#   plain  x86-64: a plain rdtsc instead of the ordered rdtscp, to price
#          the order (an invalid trace: a free may sort after the reuse of
#          its block; recorder.c, "order keys").
# Plus the library loaded but not recording (LW_TRACE_OFF=1). Medians of
# RUNS interleaved rounds (default 5); tracer/README.md, "Measured", has a
# run of it.
#   bench/trace-cost.sh [RUNS]
set -eu
command -v patch > /dev/null || { echo "needs patch (apt-get install patch)"; exit 1; }
RUNS=${1:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=$(mktemp -d /tmp/trace-cost.XXXXXX)
trap 'rm -rf "$W"' EXIT

for v in base cut plain; do
  mkdir -p "$W/$v"
  (cd "$ROOT" && git ls-files -z | xargs -0 tar -cf -) | tar -xf - -C "$W/$v"
done
patch -s -d "$W/cut" -p1 < "$ROOT/bench/trace-cost.patch" ||
  { echo "trace-cost.patch no longer applies to tracer/recorder.c: refresh it"; exit 1; }
sed -i 's/"rdtscp" : "=a"(lo), "=d"(hi) : : "rcx", "memory"/"rdtsc" : "=a"(lo), "=d"(hi) : : "memory"/' \
  "$W/plain/tracer/recorder.c"
grep -q '"rdtsc" : "=a"(lo)' "$W/plain/tracer/recorder.c" ||
  { echo "no rdtscp order key in tracer/recorder.c to replace (x86-64 only)"; exit 1; }
for v in base cut plain; do
  echo "building $v..."
  cmake -S "$W/$v" -B "$W/$v/b" -DCMAKE_BUILD_TYPE=Release -DLW_BUILD_BENCH=OFF > "$W/cmake.log" 2>&1 ||
    { cat "$W/cmake.log"; exit 1; }
  cmake --build "$W/$v/b" -j "$(nproc)" --target lwtrace lwmalloc-trace > "$W/build.log" 2>&1 ||
    { tail -30 "$W/build.log"; exit 1; }
done
cc -O2 -o "$W/tw" "$ROOT/bench/trace-tw.c" -lpthread

# run MODE: prints the worker's CPU seconds
run() {
  case $1 in
  off) LW_TRACE_OFF=1 LD_PRELOAD="$W/base/b/tracer/liblwmalloc-trace.so" TW_OUT="$W/out" "$W/tw" 1 ;;
  cut1 | cut2 | cut3)
    LW_TRACE_CUT=${1#cut} TW_OUT="$W/out" "$W/cut/b/tracer/lwtrace" record --no-stacks \
      -o "$W/t.lwt.zst" -- "$W/tw" 1 > /dev/null 2>&1 ;;
  full | plain)
    b=base
    [ "$1" = plain ] && b=plain
    TW_OUT="$W/out" "$W/$b/b/tracer/lwtrace" record --no-stacks -o "$W/t.lwt.zst" -- "$W/tw" 1 \
      > /dev/null 2>&1 ;;
  esac
  cat "$W/out"
}

MODES="off cut1 cut2 cut3 full plain"
for r in $(seq "$RUNS"); do
  for m in $MODES; do echo "$m $(run "$m")"; done
done > "$W/times"
med() { awk -v m="$1" '$1 == m { print $2 }' "$W/times" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
off=$(med off) c1=$(med cut1) c2=$(med cut2) c3=$(med cut3) full=$(med full) plain=$(med plain)
echo "./tw 1, --no-stacks, worker CPU s, medians of $RUNS (load $(cut -d' ' -f1-3 /proc/loadavg)):"
awk -v off="$off" -v c1="$c1" -v c2="$c2" -v c3="$c3" -v full="$full" -v plain="$plain" 'BEGIN {
  printf "  %-58s %7.3f\n", "library loaded, not recording (LW_TRACE_OFF=1)", off
  printf "  %-58s %7.3f  +%.1f ns a call\n", "enter and leave the recorder; a free'\''s floor and key", c1, (c1 - off) / 4e6 * 1e9
  printf "  %-58s %7.3f  +%.1f ns an allocation\n", "+ an allocation'\''s floor and key", c2, (c2 - c1) / 2e6 * 1e9
  printf "  %-58s %7.3f  +%.1f ns a call\n", "+ the key converted to the time", c3, (c3 - c2) / 4e6 * 1e9
  printf "  %-58s %7.3f  +%.1f ns a call\n", "+ the record: encoding, caches, ring (the real build)", full, (full - c3) / 4e6 * 1e9
  printf "  %-58s %7.3f  order: %.1f ns a call\n", "plain rdtsc for the ordered rdtscp (no valid order)", plain, (full - plain) / 4e6 * 1e9
}'
