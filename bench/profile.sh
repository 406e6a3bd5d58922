#!/usr/bin/env bash
# Where does an allocator spend its time on one workload?
#
#   bench/profile.sh WORKLOAD [ALLOC] [SCALE]
#
# WORKLOAD is a synthetic workload (churn, larson, prodcons, realloc, frag,
# large, tree, aligned); ALLOC is lw (default), glibc, mimalloc, jemalloc,
# tcmalloc or a path to a .so; SCALE defaults to 0.5. Prints
#   1. perf: the share of samples per shared object and the top symbols,
#   2. callgrind (single-threaded workloads, at SCALE/5): the top functions
#      by instructions,
# from the programs built by bench/run.sh (BENCH_BUILD, default
# build/bench-only). Needs perf (Debian package linux-perf) and valgrind.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
w=${1:?usage: profile.sh WORKLOAD [ALLOC] [SCALE]}
alloc=${2:-lw}
scale=${3:-0.5}
bin=${BENCH_BUILD:-$root/build/bench-only}
case $alloc in
  lw) lib=${LW_LIB:-$root/build/lib/liblwmalloc.so} ;;
  glibc) lib= ;;
  mimalloc) lib=$(dpkg -L libmimalloc2.0 | grep -E '/libmimalloc\.so\.[0-9.]+$' | sort | head -n1) ;;
  jemalloc) lib=$(dpkg -L libjemalloc2 | grep -E '/libjemalloc\.so\.[0-9.]+$' | sort | head -n1) ;;
  tcmalloc) lib=$(dpkg -L libtcmalloc-minimal4 | grep -E '/libtcmalloc_minimal\.so\.[0-9.]+$' | sort | head -n1) ;;
  *) lib=$alloc ;;
esac
[[ -x $bin/lwb-$w ]] || { echo "no $bin/lwb-$w: run bench/run.sh once or set BENCH_BUILD" >&2; exit 2; }
[[ -z $lib || -f $lib ]] || { echo "no such library: $lib" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== perf: lwb-$w 42 $scale under ${alloc}"
LD_PRELOAD=$lib perf record -q -g -o "$tmp/perf.data" "$bin/lwb-$w" 42 "$scale" >/dev/null 2>&1
perf report -i "$tmp/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -n 6
echo
perf report -i "$tmp/perf.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null |
  grep -v '^#' | grep -v '^$' | head -n 20

case $w in larson|prodcons) exit 0 ;; esac
echo
echo "== callgrind: lwb-$w 42 $(awk "BEGIN{print $scale/5}") under ${alloc}"
LD_PRELOAD=$lib valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" \
  "$bin/lwb-$w" 42 "$(awk "BEGIN{print $scale/5}")" 2>&1 >/dev/null | grep 'Collected' || true
callgrind_annotate "$tmp/cg.out" 2>/dev/null | sed -n '/file:function/,/^$/p' | head -n 25
