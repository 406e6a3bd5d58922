#!/usr/bin/env bash
# A/B of allocator builds on one workload: the builds run in turn, N rounds,
# so that a change of the machine's load hits them alike; prints per build
# the median work time (the workload's own work_s), peak RSS and minor page
# faults, and every run's time.
#
#   bench/ab.sh N WORKLOAD [SCALE]      e.g. bench/ab.sh 7 large
#   ALLOCS="glibc build/lib/liblwmalloc.so /tmp/old.so" bench/ab.sh 5 churn
#
# WORKLOAD is a synthetic workload (churn, larson, prodcons, realloc, frag,
# large, tree, aligned) from the programs bench/run.sh builds (BENCH_BUILD,
# default build/bench-only); ALLOCS (default: glibc and build/lib's
# liblwmalloc.so) are glibc or paths to .so files, preloaded.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
n=${1:?usage: ab.sh N WORKLOAD [SCALE]}
w=${2:?usage: ab.sh N WORKLOAD [SCALE]}
scale=${3:-1}
bin=${BENCH_BUILD:-$root/build/bench-only}/lwb-$w
[ -x "$bin" ] || { echo "ab.sh: no $bin (bench/run.sh builds it; or set BENCH_BUILD)" >&2; exit 2; }
read -r -a allocs <<<"${ALLOCS:-glibc $root/build/lib/liblwmalloc.so}"
for a in "${allocs[@]}"; do
  [ "$a" = glibc ] || [ -f "$a" ] || { echo "ab.sh: no allocator $a" >&2; exit 2; }
done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for ((round = 0; round < n; round++)); do
  for i in "${!allocs[@]}"; do
    pre=${allocs[$i]}
    [ "$pre" = glibc ] && pre=
    # time(1) writes "maxrss_kb minor_faults"; the workload's LWB line has work_s
    LD_PRELOAD=$pre /usr/bin/time -o "$out/tm" -f '%M %R' "$bin" 42 "$scale" >/dev/null 2>"$out/err" \
      || { cat "$out/err" >&2; echo "ab.sh: $w failed under ${allocs[$i]}" >&2; exit 1; }
    t=$(grep -o 'work_s=[0-9.]*' "$out/err" | cut -d= -f2)
    echo "$t $(cat "$out/tm")" >>"$out/$i"
  done
done
median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
printf '%-40s %10s %12s %12s  %s\n' allocator work_s peak_rss_kb minflt runs
for i in "${!allocs[@]}"; do
  printf '%-40s %10s %12s %12s  %s\n' "$(basename "${allocs[$i]}")" \
    "$(cut -d' ' -f1 "$out/$i" | median)" "$(cut -d' ' -f2 "$out/$i" | median)" \
    "$(cut -d' ' -f3 "$out/$i" | median)" "$(cut -d' ' -f1 "$out/$i" | tr '\n' ' ')"
done
