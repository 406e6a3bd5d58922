#!/usr/bin/env bash
# Smoke test (CTest bench-smoke): every workload at a small scale under
# glibc and under the given allocator; the checksums must match, the
# allocator must really be loaded, and every run must exit 0.
#
#   bench/smoke.sh BIN_DIR LIB.so [SCALE]
set -u
bin=$1 lib=$2 scale=${3:-0.03}
pass=0 fail=0
for w in churn larson prodcons realloc frag large tree aligned; do
  ref=$("$bin/lwb-run" -o /dev/stdout -e /dev/null -- "$bin/lwb-$w" 7 "$scale" | head -n1)
  line=$("$bin/lwb-run" -p "$lib" -o /dev/stdout -e /dev/null -- "$bin/lwb-$w" 7 "$scale")
  got=$(head -n1 <<<"$line")
  meta=$(tail -n1 <<<"$line")
  if [[ $got == "$ref" && $got == checksum* && $meta == *"status=0 preload_seen=1"* ]]; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "FAIL $w: glibc '$ref', $(basename "$lib") '$got' ($meta)"
  fi
done
echo "$pass passed, $fail failed"
[[ $fail == 0 ]]
