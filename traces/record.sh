#!/bin/sh
# Re-records the sample traces of real programs in this directory:
#   traces/record.sh BUILD_DIR
# (BUILD_DIR holds tracer/lwtrace and tests-or-tests/tracer/threads4).
# sqlite3 script, 4-thread python3 script, a 4-thread C program, and a
# mosquitto broker with a publisher and a subscriber on 127.0.0.1.
set -eu
B=$1
HERE=$(cd "$(dirname "$0")" && pwd)
L=$B/tracer/lwtrace
T4=$(ls "$B"/tests/tracer/threads4 "$B"/tests-tracer/threads4 2>/dev/null | head -1)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

cat > s.sql <<'SQL'
create table kv(k integer primary key, v text, n real);
create index kv_v on kv(v);
with recursive c(i) as (select 1 union all select i+1 from c where i < 3000)
insert into kv select i, printf('value-%d-%s', i, hex(randomblob(8))), i*0.5 from c;
select count(*), sum(n) from kv where v like 'value-1%';
update kv set v = v || '-x' where k % 3 = 0;
delete from kv where k % 7 = 0;
select v, count(*) from kv group by substr(v, 1, 8) order by 2 desc limit 3;
SQL
"$L" record --depth 16 -o "$HERE/sqlite3.lwt.zst" -- sqlite3 :memory: < s.sql > /dev/null

cat > t.py <<'PY'
import threading, json
def work(k):
    d = {}
    for i in range(3000):
        d[i % 500] = json.dumps({"k": k, "i": i, "s": "x" * (i % 50)})
    return len(d)
ts = [threading.Thread(target=work, args=(k,), name="worker-%d" % k) for k in range(4)]
[t.start() for t in ts]
[t.join() for t in ts]
PY
"$L" record --depth 16 -o "$HERE/python3-threads.lwt.zst" -- /usr/bin/python3 t.py

"$L" record --depth 16 -o "$HERE/threads4.lwt.zst" -- "$T4" expect.txt

PORT=$((20000 + $$ % 20000))
printf 'listener %d 127.0.0.1\nallow_anonymous true\n' $PORT > m.conf
"$L" record --depth 16 -o "$HERE/mosquitto.lwt.zst" -- mosquitto -c m.conf 2> /dev/null &
REC=$!
sleep 1
mosquitto_sub -h 127.0.0.1 -p $PORT -t 'lw/#' -C 200 > sub.txt &
SUB=$!
sleep 0.5
i=0
while [ $i -lt 200 ]; do
  mosquitto_pub -h 127.0.0.1 -p $PORT -t "lw/t$((i % 5))" -m "message $i $(date +%N)"
  i=$((i + 1))
done
wait $SUB
kill -TERM "$(pgrep -P $REC)"
wait $REC || true
ls -la "$HERE"/*.lwt.zst
