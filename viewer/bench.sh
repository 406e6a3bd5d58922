#!/bin/bash
# lwview benchmarks: import rate and view/cursor response.
#   viewer/bench.sh BUILD_DIR [CALLS_MILLIONS] [WORKDIR]
# Records a synthetic trace of about CALLS_MILLIONS million calls
# (tests/viewer/vw_workload, 4 threads, under `lwtrace record`), imports it
# with `lwview --import-only --force`, then runs `lwview --bench-views`
# (every view drawn at 50 cursor positions on an 80x24 screen).
# Prints wall and CPU seconds: on a shared machine the CPU time is the
# steadier figure; records/s is given for both.
set -eu
build=${1:?usage: bench.sh BUILD_DIR [CALLS_MILLIONS] [WORKDIR]}
millions=${2:-10}
work=${3:-/tmp/lwview-bench}
mkdir -p "$work"
trace=$work/bench.lwt.zst
iters=$((millions * 1000000 / 4))
if [ ! -f "$trace" ] || [ "$(cat "$work/bench.calls" 2>/dev/null)" != "$millions" ]; then
  echo "recording ~${millions} M calls ..."
  "$build/tracer/lwtrace" record -o "$trace" -- "$build/tests/viewer/vw_workload" 4 "$iters" > /dev/null
  echo "$millions" > "$work/bench.calls"
fi
"$build/tracer/lwtrace" info "$trace" | sed -n '1,4p'
echo "importing ..."
/usr/bin/time -f "%e %U %S %M" -o "$work/time.txt" \
  env LWV_TIMING=1 "$build/viewer/lwview" --import-only --force --quiet "$trace" > "$work/summary.txt"
read -r wall user sys maxrss < "$work/time.txt"
records=$(awk '$1 == "records" { print $2 }' "$work/summary.txt")
awk -v r="$records" -v w="$wall" -v u="$user" -v s="$sys" -v m="$maxrss" 'BEGIN {
  printf "import: %d records, %.1f s wall (%.2f M records/s), %.1f s CPU (%.2f M records/s), max RSS %d MB\n",
    r, w, r / w / 1e6, u + s, r / (u + s) / 1e6, m / 1024 }'
ls -l "$work/bench.db" | awk '{ printf "database: %d MB\n", $5 / 1048576 }'
echo "views (ms per cursor move + redraw):"
"$build/viewer/lwview" --bench-views "$work/bench.db"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
