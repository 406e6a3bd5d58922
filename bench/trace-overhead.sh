#!/bin/sh
# lwtrace overhead: wall time of a sqlite3 script and of a 4-thread python3
# script untraced (glibc, and lwmalloc preloaded = the allocator lwtrace
# records), under `lwtrace record` (with and without stacks) and under
# heaptrack; medians of RUNS runs. Prints ratios and trace sizes per million
# recorded events, then the 1-thread vs 2-thread recording check. Modes:
# lwtrace (the default: stacks on the calls that return a block),
# lwtrace-allstacks (a stack on every call, frees too), lwtrace-nostacks. Wall time
# and CPU time (user+sys of every process involved, writer threads and
# heaptrack's interpreter included) are both reported: on a loaded machine
# the CPU ratio is the steadier one.
#   bench/trace-overhead.sh [BUILD_DIR (default: build)] [RUNS (default: 3)]
#   TRACE_OVERHEAD_PART=scalability (or =overhead) runs only that part.
# The modes run interleaved; on a shared machine prefer more runs (5-9).
set -eu
B=$(cd "${1:-build}" && pwd)
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
RUNS=${2:-3}
LWTRACE=$B/tracer/lwtrace
LWSO=$B/lib/liblwmalloc.so
PY=/usr/bin/python3 # not a pyenv shim: the tracer must see python itself
for f in "$LWTRACE" "$LWSO"; do [ -e "$f" ] || { echo "missing $f (build first)"; exit 1; }; done
HAVE_HT=1
command -v heaptrack > /dev/null || { HAVE_HT=0; echo "(heaptrack not installed: apt-get install heaptrack)"; }
W=$(mktemp -d /tmp/trace-overhead.XXXXXX)
trap 'rm -rf "$W"' EXIT
cd "$W"

cat > s.sql <<'SQL'
create table kv(k integer primary key, v text, n real);
create index kv_v on kv(v);
with recursive c(i) as (select 1 union all select i+1 from c where i < 60000)
insert into kv select i, printf('value-%d-%s', i, hex(randomblob(16))), i*0.5 from c;
select count(*), sum(n) from kv where v like 'value-1%';
update kv set v = v || '-x' where k % 3 = 0;
delete from kv where k % 7 = 0;
select substr(v, 1, 8), count(*) from kv group by 1 order by 2 desc limit 3;
create table t2 as select k, v || v as w from kv where k % 2 = 0;
select count(*) from t2 join kv using (k) where length(w) > 40;
SQL
cat > t.py <<'PY'
import threading, json
def work(n):
    d = {}
    for i in range(n):
        d[i % 1000] = json.dumps({"i": i, "s": "x" * (i % 100), "l": [i, i + 1, str(i)]})
    return len(d)
ts = [threading.Thread(target=work, args=(60000,)) for _ in range(4)]
[t.start() for t in ts]
[t.join() for t in ts]
PY
cc -O2 -o tw "$BENCH_DIR/trace-tw.c" -lpthread

# run MODE WORKLOAD: one run; prints "wall_s cpu_s"; leaves its trace in $W
run() {
  mode=$1 wl=$2
  case $wl in
  sqlite3) set -- sqlite3 :memory: ;;
  python3 | python3-malloc) set -- $PY t.py ;;
  tw1) set -- ./tw 1 ;;
  tw2) set -- ./tw 2 ;;
  esac
  rm -f out.lwt.zst ht.zst ht.gz
  if [ $wl = python3-malloc ]; then export PYTHONMALLOC=malloc; else unset PYTHONMALLOC; fi
  case $mode in
  glibc) /usr/bin/time -f '%e %U %S' -o tm "$@" < s.sql > /dev/null ;;
  lw) LD_PRELOAD=$LWSO /usr/bin/time -f '%e %U %S' -o tm "$@" < s.sql > /dev/null ;;
  lwtrace) /usr/bin/time -f '%e %U %S' -o tm "$LWTRACE" record -o out.lwt.zst -- "$@" < s.sql > /dev/null 2>&1 ;;
  lwtrace-allstacks) /usr/bin/time -f '%e %U %S' -o tm "$LWTRACE" record --all-stacks -o out.lwt.zst -- "$@" < s.sql > /dev/null 2>&1 ;;
  lwtrace-nostacks) /usr/bin/time -f '%e %U %S' -o tm "$LWTRACE" record --no-stacks -o out.lwt.zst -- "$@" < s.sql > /dev/null 2>&1 ;;
  heaptrack) /usr/bin/time -f '%e %U %S' -o tm heaptrack -o "$W/ht" "$@" < s.sql > /dev/null 2>&1 ;;
  esac
  unset PYTHONMALLOC
  awk '{print $1, $2 + $3}' tm
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

PART=${TRACE_OVERHEAD_PART:-all}
if [ "$PART" != scalability ]; then
printf '%-15s %-19s %7s %7s %7s %7s %7s %7s %11s %9s %7s\n' workload mode wall_s x_glibc x_lw \
  cpu_s xc_glibc xc_lw trace_bytes events MB/Mev
# The modes of a workload run interleaved (run i of every mode, then run
# i+1...), so that a change of the machine's load hits them all alike.
MODES="glibc lw lwtrace lwtrace-allstacks lwtrace-nostacks"
[ $HAVE_HT = 1 ] && MODES="$MODES heaptrack"
for wl in sqlite3 python3 python3-malloc; do
  for mode in $MODES; do : > runs.$mode; done
  i=0
  while [ $i -lt "$RUNS" ]; do
    for mode in $MODES; do
      run $mode $wl >> runs.$mode
      [ -f out.lwt.zst ] && mv out.lwt.zst out.$mode.lwt.zst
      for f in ht.zst ht.gz; do [ -f $f ] && mv $f $mode.$f; done
    done
    i=$((i + 1))
  done
  wall_g=1 wall_l=0 cpu_g=1 cpu_l=0
  for mode in $MODES; do
    wall=$(cut -d' ' -f1 runs.$mode | median)
    cpu=$(cut -d' ' -f2 runs.$mode | median)
    [ $mode = glibc ] && { wall_g=$wall; cpu_g=$cpu; }
    [ $mode = lw ] && { wall_l=$wall; cpu_l=$cpu; }
    size=- events=- mbpm=-
    if [ -f out.$mode.lwt.zst ]; then
      size=$(stat -c %s out.$mode.lwt.zst)
      events=$("$LWTRACE" info --json out.$mode.lwt.zst | python3 -c 'import json,sys; print(json.load(sys.stdin)["records"])')
      mbpm=$(awk -v s=$size -v e=$events 'BEGIN {printf "%.3f", s / 1e6 / (e / 1e6)}')
    fi
    [ -f $mode.ht.zst ] && size=$(stat -c %s $mode.ht.zst)
    [ -f $mode.ht.gz ] && size=$(stat -c %s $mode.ht.gz)
    awk -v wl=$wl -v m=$mode -v w=$wall -v c=$cpu -v wg=$wall_g -v wl_=$wall_l -v cg=$cpu_g \
      -v cl=$cpu_l -v sz=$size -v ev=$events -v mb=$mbpm 'BEGIN {
        printf "%-15s %-19s %7.2f %7s %7s %7.2f %7s %7s %11s %9s %7s\n", wl, m, w,
          r(w, wg), r(w, wl_), c, r(c, cg), r(c, cl), sz, ev, mb }
      function r(a, b) { return b > 0 ? sprintf("%.2f", a / b) : "-" }'
  done
  rm -f out.*.lwt.zst ./*.ht.zst ./*.ht.gz
done
echo
fi
[ "$PART" = overhead ] && exit 0
echo "recording scalability: ./tw N = N threads x 2e6 malloc/free each ($(nproc) cores);"
echo "cpu = all threads (writer included) / N; worker = each worker's own CPU (CLOCK_THREAD_CPUTIME_ID)"
export TW_OUT="$W/tw.out"
for mode in lw lwtrace lwtrace-nostacks; do
  : > r1
  : > r2
  : > w1
  : > w2
  for i in $(seq "$RUNS"); do
    run $mode tw1 >> r1
    cat "$TW_OUT" >> w1
    run $mode tw2 >> r2
    cat "$TW_OUT" >> w2
  done
  awk -v m=$mode -v a="$(cut -d' ' -f1 r1 | median)" -v b="$(cut -d' ' -f1 r2 | median)" \
    -v ca="$(cut -d' ' -f2 r1 | median)" -v cb="$(cut -d' ' -f2 r2 | median)" \
    -v wa="$(median < w1)" -v wb="$(median < w2)" 'BEGIN {
      printf "%-17s wall 1/2 thr %5.2f/%5.2f s (x%s)  cpu/thr %5.2f/%5.2f s (x%s)  worker cpu/thr %5.3f/%5.3f s (x%s)\n",
        m, a, b, r(b, a), ca, cb / 2, r(cb / 2, ca), wa, wb, r(wb, wa) }
    function r(x, y) { return y > 0 ? sprintf("%.2f", x / y) : "-" }'
done
