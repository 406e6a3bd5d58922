#!/usr/bin/env bash
# The speed and memory race: every workload under lw, glibc, mimalloc,
# jemalloc and tcmalloc.
#
#   bench/run.sh [--runs N] [--quick] [--only W1,W2] [--callgrind] [--allocators a,b]
#                [--lib NAME=PATH.so]... [--scale X] [--no-latency]
#
# e.g. bench/run.sh --quick --only larson,large --allocators lw,glibc --lib lwold=/tmp/old/liblwmalloc.so
#
# Installs the peer allocators from Debian if missing, builds the workload
# programs (bench/ standalone, so the peers can be measured even while
# lib/ does not build), builds liblwmalloc.so unless LW_LIB points to one,
# then runs bench/bench.py, which prints the tables and writes
# bench/results/latest.csv and bench/results/latest.md.
#
# Environment: LW_LIB (a liblwmalloc.so to use as is; default: build and use
# $BUILD_DIR/lib/liblwmalloc.so), BUILD_DIR (default build), BENCH_BUILD
# (default $BUILD_DIR/bench-only).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"
BUILD_DIR=${BUILD_DIR:-build}
BENCH_BUILD=${BENCH_BUILD:-$BUILD_DIR/bench-only}

# Peers and the programs the real-program workloads run.
need=()
for pkg in libmimalloc2.0 libjemalloc2 libtcmalloc-minimal4 sqlite3 python3 \
           redis-server redis-tools mosquitto mosquitto-clients valgrind cmake gcc; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ((${#need[@]})); then
  echo "run.sh: installing ${need[*]}" >&2
  apt-get install -y "${need[@]}" >&2 || { apt-get update >&2 && apt-get install -y "${need[@]}" >&2; }
fi

# The shared object each peer package ships (e.g. libmimalloc.so.2.0).
peer_so() { dpkg -L "$1" | grep -E "/$2\.so\.[0-9.]+$" | sort | head -n1; }
MIMALLOC=$(peer_so libmimalloc2.0 libmimalloc)
JEMALLOC=$(peer_so libjemalloc2 libjemalloc)
TCMALLOC=$(peer_so libtcmalloc-minimal4 libtcmalloc_minimal)

cmake -S "$here" -B "$BENCH_BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BENCH_BUILD" -j"$(nproc)" >/dev/null

if [[ -z "${LW_LIB:-}" ]]; then
  # Build (or refresh) the allocator in the project's build tree, keeping
  # whatever configuration it has. If the whole project does not configure
  # (a tool or test dir broken mid-edit), build lib/ alone in
  # $BUILD_DIR/bench-lw instead. A failure of both only drops lw.
  LW_LIB=$BUILD_DIR/lib/liblwmalloc.so
  log=$BENCH_BUILD/lw-build.log
  if { [[ -f $BUILD_DIR/CMakeCache.txt ]] || cmake -S . -B "$BUILD_DIR" >"$log" 2>&1; } &&
     cmake --build "$BUILD_DIR" --target lwmalloc -j"$(nproc)" >>"$log" 2>&1; then
    :
  elif cmake -S . -B "$BUILD_DIR/bench-lw" -DLW_BUILD_TOOLS=OFF -DLW_BUILD_TESTS=OFF \
         -DLW_BUILD_BENCH=OFF >>"$log" 2>&1 &&
       cmake --build "$BUILD_DIR/bench-lw" --target lwmalloc -j"$(nproc)" >>"$log" 2>&1; then
    echo "run.sh: the project does not configure; using lib/ built alone in $BUILD_DIR/bench-lw" >&2
    LW_LIB=$BUILD_DIR/bench-lw/lib/liblwmalloc.so
  else
    rm -f "$BUILD_DIR/bench-lw/lib/liblwmalloc.so"*
    echo "run.sh: liblwmalloc.so does not build (see $log); lw is left out" >&2
    LW_LIB=$BUILD_DIR/bench-lw/lib/liblwmalloc.so
  fi
fi
# Which allocator sources were measured (shown in the results header).
LWB_LW_VERSION=$(git -C "$root" log -1 --format='%h %cd' --date=format:'%H:%M' -- lib 2>/dev/null || true)
if [[ -n $(git -C "$root" status --porcelain -- lib 2>/dev/null) ]]; then
  LWB_LW_VERSION+=" + uncommitted lib/ changes"
fi
export LWB_LW_VERSION

PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3
export LWB_CMDLINE="bench/run.sh $*"
exec "$PY" "$here/bench.py" --bin "$BENCH_BUILD" --lw "$LW_LIB" \
  --mimalloc "$MIMALLOC" --jemalloc "$JEMALLOC" --tcmalloc "$TCMALLOC" "$@"
