#!/bin/sh
# Engine throughput: events/second of lwreplay itself, replaying a
# generated churn trace (malloc/calloc/free, ring of 1024 live blocks, 1 in
# 64 medium sizes) on ONE thread against glibc, with per-op latency timing
# off, sampled (1 in 16, the default for large traces) and on every op;
# then the engine alone (--allocator=null: bump pointer, free is a no-op).
#
#   replay/bench-engine.sh [LWREPLAY] [EVENTS] [RUNS]
#
# Target: >= 20 M events/s with sampled latency. The reported figure is
# the median of RUNS runs; "per CPU-second" discounts time the machine
# spent on other processes.
set -eu
LWREPLAY=${1:-build/replay/lwreplay}
EVENTS=${2:-20000000}
RUNS=${3:-5}
[ -x "$LWREPLAY" ] || { echo "bench-engine: $LWREPLAY not found (build it, or pass its path)" >&2; exit 2; }
echo "lwreplay engine, $EVENTS events, median of $RUNS runs, glibc, 1 thread ($(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg))"
for lat in off 16 all; do
  "$LWREPLAY" --bench-engine="$EVENTS" --allocator=glibc --runs "$RUNS" --latency=$lat | grep '^engine:'
done
# The engine alone: a bump-pointer "allocator" that costs ~nothing.
"$LWREPLAY" --bench-engine="$EVENTS" --allocator=null --runs "$RUNS" --latency=16 | grep '^engine:'
