#!/usr/bin/env bash
# mosquitto broker with lwmalloc preloaded on a free 127.0.0.1 port:
# mosquitto_sub receives every one of N messages (of varied sizes) that
# mosquitto_pub sends, in order, at QoS 1.
source "$(dirname "$0")/e2e_lib.sh"
N=2000

PORT="$(free_port)"
# (user root: as root, mosquitto would otherwise switch to the mosquitto
# user, who cannot write the log in our private work directory.
# max_queued_messages 0: by default the broker drops a subscriber's QoS 1
# messages past 1000 queued; on a loaded CI machine the publisher got that
# far ahead and the subscriber waited for messages 1808-2000 in vain.)
cat >"$WORK/mosquitto.conf" <<CONF
listener $PORT 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 0
user root
log_dest file $WORK/broker.log
log_type all
CONF
env LD_PRELOAD="$LWLIB" LW_STATS=1 mosquitto -c "$WORK/mosquitto.conf" >"$WORK/broker.out" 2>"$WORK/broker.err" &
BROKER=$!
PIDS_TO_KILL+=("$BROKER")
wait_for "mosquitto to listen" 20 sh -c "grep -q 'Opening ipv4 listen socket on port $PORT' '$WORK/broker.log'"
expect_mapped "$BROKER"

# Messages: a counter followed by 0..2999 bytes of padding.
/usr/bin/python3 -c "
for i in range($N):
    print(f'{i}:' + 'abcdefghij'[i % 10] * (i * 37 % 3000))" >"$WORK/messages"

timeout 60 mosquitto_sub -h 127.0.0.1 -p "$PORT" -i lwsub -q 1 -t 'lwtest/#' -C "$N" -W 50 >"$WORK/received" 2>"$WORK/sub.err" &
SUB=$!
PIDS_TO_KILL+=("$SUB")
wait_for "the subscription" 20 grep -q 'Received SUBSCRIBE from lwsub' "$WORK/broker.log"
timeout 60 mosquitto_pub -h 127.0.0.1 -p "$PORT" -i lwpub -q 1 -t lwtest/data -l <"$WORK/messages" || fail "mosquitto_pub failed"
wait_exit "$SUB" 55 || { cat "$WORK/sub.err" >&2; fail "mosquitto_sub did not receive $N messages"; }
cmp "$WORK/messages" "$WORK/received" || fail "received messages differ from the sent ones"

kill -TERM "$BROKER"
wait_exit "$BROKER" 20 || fail "mosquitto exited with an error"
expect_stats "$WORK/broker.err"
pass "mosquitto: $N messages delivered"
