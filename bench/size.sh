#!/usr/bin/env bash
# Size of the allocator: lines of code of the core (comments and blank
# lines not counted; override glue, statistics, checks and the live page
# not counted) and the text size of liblwmalloc.so as `size` reports it.
#   bash bench/size.sh [BUILD_DIR]     (default: build)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build}"
cd "$root/lib"
core="os.c segment.c pool.c thread.c heap.c coalesce.c big.c api.c init.c region.c signal.c types.h internal.h events.h"
rest="override.c stats.c check.c live.c include/lwmalloc.h include/lwmalloc_live.h"
# strip /* */ and // comments, count non-blank lines
sloc() { python3 -c '
import re, sys
n = 0
for path in sys.argv[1:]:
    s = open(path).read()
    s = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), s, flags=re.S)
    s = re.sub(r"//[^\n]*", "", s)
    n += sum(1 for l in s.split("\n") if l.strip())
print(n)' "$@"; }
echo "core lines of code:            $(sloc $core)   ($core)"
echo "glue, stats, checks, live page: $(sloc $rest)"
echo "all of lib/ (wc -l):            $(cat $core $rest | wc -l)"
so="$build/lib/liblwmalloc.so"
if [ -f "$so" ]; then
  size "$so"
else
  echo "no $so: build first (cmake -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build)"
fi
