#!/bin/sh
# lwtrace overhead: wall time of a sqlite3 script and of a 4-thread python3
# script untraced (glibc, and lwmalloc preloaded = the allocator lwtrace
# records), under `lwtrace record` (with and without stacks) and under
# heaptrack; medians of RUNS runs. Prints ratios and trace sizes per million
# recorded events, then the 1-thread vs 2-thread recording check.
#   bench/trace-overhead.sh [BUILD_DIR (default: build)] [RUNS (default: 3)]
set -eu
B=$(cd "${1:-build}" && pwd)
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
cat > tw.c <<'C'
#include <pthread.h>
#include <stdlib.h>
static void *run(void *arg) {
  (void)arg;
  void *slot[256] = {0};
  for (unsigned i = 0; i < 1000000; i++) {
    unsigned k = (i * 2654435761u) >> 24;
    free(slot[k]);
    slot[k] = malloc(16 + (i % 240));
  }
  for (int k = 0; k < 256; k++) free(slot[k]);
  return NULL;
}
int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 1;
  pthread_t t[16];
  for (int i = 0; i < n; i++) pthread_create(&t[i], NULL, run, NULL);
  for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
  return 0;
}
C
cc -O2 -o tw tw.c -lpthread

now() { date +%s%N; }
# run MODE WORKLOAD: one run, prints wall ns; leaves trace files in $W
run() {
  mode=$1 wl=$2
  case $wl in
  sqlite3) set -- sqlite3 :memory: ;;
  python3) set -- $PY t.py ;;
  python3-malloc) set -- env PYTHONMALLOC=malloc $PY t.py ;;
  tw1) set -- ./tw 1 ;;
  tw2) set -- ./tw 2 ;;
  esac
  rm -f out.lwt.zst ht.zst ht.gz
  t0=$(now)
  case $mode in
  glibc) "$@" < s.sql > /dev/null ;;
  lw) LD_PRELOAD=$LWSO "$@" < s.sql > /dev/null ;;
  lwtrace) "$LWTRACE" record -o out.lwt.zst -- "$@" < s.sql > /dev/null 2>&1 ;;
  lwtrace-nostacks) "$LWTRACE" record --no-stacks -o out.lwt.zst -- "$@" < s.sql > /dev/null 2>&1 ;;
  heaptrack) heaptrack -o "$W/ht" "$@" < s.sql > /dev/null 2>&1 ;;
  esac
  echo $(( $(now) - t0 ))
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

printf '%-15s %-17s %9s %8s %8s %12s %10s %9s\n' workload mode median_s x_glibc x_lw trace_bytes events MB/Mev
for wl in sqlite3 python3 python3-malloc; do
  base_g= base_l=
  for mode in glibc lw lwtrace lwtrace-nostacks heaptrack; do
    [ $mode = heaptrack ] && [ $HAVE_HT = 0 ] && continue
    [ $mode = heaptrack ] && [ $wl = python3-malloc ] && [ "${HT_MALLOC:-0}" = 0 ] && continue
    times=""
    i=0
    while [ $i -lt "$RUNS" ]; do
      times="$times $(run $mode $wl)"
      i=$((i + 1))
    done
    med=$(echo $times | tr ' ' '\n' | median)
    [ $mode = glibc ] && base_g=$med
    [ $mode = lw ] && base_l=$med
    size=- events=- mbpm=-
    if [ -f out.lwt.zst ]; then
      size=$(stat -c %s out.lwt.zst)
      events=$("$LWTRACE" info --json out.lwt.zst | python3 -c 'import json,sys; print(json.load(sys.stdin)["records"])')
      mbpm=$(awk -v s=$size -v e=$events 'BEGIN {printf "%.3f", s / 1e6 / (e / 1e6)}')
    fi
    [ -f ht.zst ] && size=$(stat -c %s ht.zst)
    [ -f ht.gz ] && size=$(stat -c %s ht.gz)
    printf '%-15s %-17s %9.3f %8.2f %8.2f %12s %10s %9s\n' $wl $mode \
      "$(awk -v m=$med 'BEGIN {print m / 1e9}')" \
      "$(awk -v m=$med -v b=$base_g 'BEGIN {print m / b}')" \
      "$(awk -v m=$med -v b=${base_l:-$med} 'BEGIN {print m / b}')" $size $events $mbpm
  done
done

echo
echo "recording scalability: ./tw N = N threads x 1e6 malloc/free each (2 cores)"
for mode in lw lwtrace lwtrace-nostacks; do
  t1=$( (for i in $(seq "$RUNS"); do run $mode tw1; done) | median)
  t2=$( (for i in $(seq "$RUNS"); do run $mode tw2; done) | median)
  printf '%-17s 1 thread %6.3f s   2 threads %6.3f s   ratio %.2f\n' $mode \
    "$(awk -v m=$t1 'BEGIN {print m / 1e9}')" "$(awk -v m=$t2 'BEGIN {print m / 1e9}')" \
    "$(awk -v a=$t1 -v b=$t2 'BEGIN {print b / a}')"
done
