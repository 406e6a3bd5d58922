#!/bin/sh
# lwreplay end to end, one case per CTest entry:
#   replay_cli.sh CASE LWREPLAY LWTRACE WORKDIR [ARG]
# CASE: synth | errors | violations BADALLOC.so | corrupt PROG | recorded PROG
#       | trace FILE | none
# Exit 0 pass, 1 fail, 77 skip.
set -u
CASE=$1 LWREPLAY=$2 LWTRACE=$3 WORK=$4 ARG=${5:-}
mkdir -p "$WORK" || exit 1
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

# The allocators this machine has (the named peers are optional packages).
available() {
  for a in lw glibc mimalloc jemalloc tcmalloc; do
    if "$LWREPLAY" --synth=churn,100 --allocator=$a >/dev/null 2>"$WORK/probe.err"; then
      printf '%s ' $a
    elif ! grep -q 'not found' "$WORK/probe.err"; then
      echo "FAIL: probing $a: $(cat "$WORK/probe.err")" >&2
    fi
  done
}
ALLOCS=$(available)
COMMA=$(echo $ALLOCS | tr ' ' ',')
echo "allocators: $ALLOCS"

# json FILE EXPR: evaluates a python expression over the parsed JSON as d
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

# "exactly one line on stderr, nonzero exit" (the error contract)
expect_error() { # name expected_rc stderr_file rc [pattern]
  lines=$(wc -l < "$3")
  if [ "$4" -ne "$2" ]; then fail "$1: exit $4, expected $2"; fi
  if [ "$lines" -ne 1 ]; then fail "$1: $lines lines on stderr:"; cat "$3"; fi
  if [ -n "${5:-}" ] && ! grep -q -- "$5" "$3"; then fail "$1: stderr lacks '$5': $(cat "$3")"; fi
  [ "$4" -eq "$2" ] && [ "$lines" -eq 1 ] && ok "$1: $(cat "$3")"
}

# replay_trace FILE: every available allocator, checked; peak live equal to
# lwtrace info's; op-stream hash stable across runs, processes and --serial.
replay_trace() {
  t=$1 name=$(basename "$1")
  for a in $ALLOCS; do
    "$LWREPLAY" "$t" --allocator=$a --check --touch --runs 2 --json >"$WORK/$name.$a.json" 2>"$WORK/$name.$a.err"
    rc=$?
    if [ $rc -ne 0 ] && [ $a = mimalloc ] && grep -q 'result not aligned as asked' "$WORK/$name.$a.err"; then
      # Debian's mimalloc 2.0.9 returns misaligned blocks for alignments
      # 256..1024 (microsoft/mimalloc#700, fixed upstream after 2.0.9).
      echo "known: mimalloc 2.0.9 alignment bug: $(cat "$WORK/$name.$a.err")"
      continue
    fi
    if [ $rc -ne 0 ]; then fail "$name with $a: exit $rc: $(cat "$WORK/$name.$a.err")"; continue; fi
    peak=$(json "$WORK/$name.$a.json" 'd["allocators"][0]["median"]["peak_live_bytes"]')
    tpeak=$(json "$WORK/$name.$a.json" 'd["trace_peak_live_bytes"]')
    [ "$peak" = "$tpeak" ] || fail "$name with $a: replayed peak live $peak != trace's $tpeak"
    ok "$name with $a (peak live $peak)"
  done
  if [ -x "$LWTRACE" ]; then
    "$LWTRACE" info --json "$t" >"$WORK/$name.info.json" || fail "lwtrace info $name"
    ipeak=$(json "$WORK/$name.info.json" 'd["peak_live_bytes"]')
    "$LWREPLAY" "$t" --allocator=glibc --json >"$WORK/$name.g1.json" || fail "$name glibc"
    rpeak=$(json "$WORK/$name.g1.json" 'd["trace_peak_live_bytes"]')
    [ "$ipeak" = "$rpeak" ] && ok "$name: peak live $rpeak = lwtrace info's" ||
      fail "$name: peak live $rpeak != lwtrace info's $ipeak"
    # One replay thread per traced thread (a reused tid would add one).
    ith=$(json "$WORK/$name.info.json" 'len(d["threads"])')
    rth=$(json "$WORK/$name.g1.json" 'd["threads"]')
    [ "$ith" = "$rth" ] && ok "$name: $rth replay threads = lwtrace info's threads" ||
      fail "$name: $rth replay threads, lwtrace info has $ith"
  fi
  "$LWREPLAY" "$t" --allocator=glibc --json >"$WORK/$name.g2.json" || fail "$name glibc (2)"
  "$LWREPLAY" "$t" --allocator=glibc --serial --json >"$WORK/$name.gs.json" || fail "$name glibc --serial"
  h1=$(json "$WORK/$name.g2.json" 'd["allocators"][0]["op_hash"]')
  h2=$(json "$WORK/$name.gs.json" 'd["allocators"][0]["op_hash"]')
  h0=$(json "$WORK/$name.g2.json" 'd["op_hash"]')
  [ "$h1" = "$h0" ] && [ "$h2" = "$h0" ] && ok "$name: op-stream hash $h0 (threads, serial)" ||
    fail "$name: op-stream hashes differ: plan $h0 threads $h1 serial $h2"
}

record() { # PROG -> $WORK/PROG.lwt.zst
  [ -x "$LWTRACE" ] || { echo "SKIP: lwtrace not built"; exit 77; }
  out="$WORK/$(basename "$1").lwt.zst"
  rm -f "$out"
  "$LWTRACE" record -o "$out" -- "$1" >/dev/null 2>"$WORK/record.err" || {
    echo "FAIL: lwtrace record $1: $(cat "$WORK/record.err")" >&2
    exit 1
  }
  echo "$out"
}

case $CASE in
synth)
  # Every available allocator side by side on generated traces of each kind,
  # with hand-offs between 3 threads, --check and --touch.
  for kind in churn handoff realloc aligned; do
    "$LWREPLAY" --synth=$kind,30000,3 --compare=$COMMA --check --touch --runs 2 >"$WORK/$kind.txt" 2>"$WORK/$kind.err"
    rc=$?
    if [ $rc -ne 0 ] && [ $kind = aligned ] && grep -q 'mimalloc.*not aligned' "$WORK/$kind.err"; then
      echo "known: mimalloc 2.0.9 alignment bug; again without it"
      "$LWREPLAY" --synth=$kind,30000,3 --compare=$(echo $COMMA | sed 's/mimalloc,\{0,1\}//; s/,$//') \
        --check --touch --runs 2 >"$WORK/$kind.txt" 2>"$WORK/$kind.err"
      rc=$?
    fi
    [ $rc -eq 0 ] && ok "synth $kind: $(sed -n 2p "$WORK/$kind.txt")" ||
      fail "synth $kind: exit $rc: $(cat "$WORK/$kind.err")"
  done
  # Repeatability: same trace + allocator => same op stream and peak live
  # bytes (checked by lwreplay itself on every run) and RSS within 2 %.
  "$LWREPLAY" --synth=churn,400000,8 --serial --compare=$COMMA --runs 3 --touch --json >"$WORK/rss.json" || fail "rss runs"
  spread=$(json "$WORK/rss.json" '" ".join("%s:%.2f" % (a["name"], 100.0 * (max(r["rss_peak_bytes"] for r in a["runs"]) - min(r["rss_peak_bytes"] for r in a["runs"])) / min(r["rss_peak_bytes"] for r in a["runs"])) for a in d["allocators"])')
  worst=$(echo "$spread" | tr ' ' '\n' | cut -d: -f2 | sort -n | tail -1)
  python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < 2.0 else 1)" "$worst" &&
    ok "peak RSS spread over 3 runs (%): $spread" || fail "peak RSS spread >= 2 %: $spread"
  "$LWREPLAY" --synth=handoff,20000,4 --allocator=glibc --csv >"$WORK/s.csv" || fail "csv"
  [ "$(head -1 "$WORK/s.csv" | cut -d, -f1-3)" = "allocator,run,op_hash" ] &&
    [ "$(wc -l < "$WORK/s.csv")" -eq 3 ] && ok "csv: header + run + median" || fail "csv shape"
  "$LWREPLAY" --synth=handoff,20000,4 --compare=glibc,glibc --runs 3 --json >"$WORK/s.json" || fail "json"
  n=$(json "$WORK/s.json" 'len(d["allocators"][1]["runs"])')
  r=$(json "$WORK/s.json" 'd["allocators"][1]["ratio_to_first"]["peak_live_bytes"]')
  [ "$n" = 3 ] && [ "$r" = 1 ] && ok "json: 3 runs, ratio to first" || fail "json: runs=$n ratio=$r"
  ;;
errors)
  "$LWREPLAY" --synth=churn,100 --allocator=nosuch >/dev/null 2>"$WORK/e1"
  expect_error "unknown allocator" 2 "$WORK/e1" $? "valid: lw, glibc, mimalloc, jemalloc, tcmalloc"
  "$LWREPLAY" --synth=churn,100 --allocator=/nonexistent/libfoo.so >/dev/null 2>"$WORK/e2"
  expect_error "missing .so" 2 "$WORK/e2" $? "/nonexistent/libfoo.so"
  LWREPLAY_LIBDIR=$WORK/empty "$LWREPLAY" --synth=churn,100 --allocator=jemalloc >/dev/null 2>"$WORK/e6"
  expect_error "missing peer" 2 "$WORK/e6" $? "apt-get install libjemalloc2"
  LWREPLAY_LIBDIR=$WORK/empty "$LWREPLAY" --synth=churn,100 --compare=glibc,tcmalloc >/dev/null 2>"$WORK/e7"
  expect_error "missing peer in --compare" 2 "$WORK/e7" $? "apt-get install libtcmalloc-minimal4"
  "$LWREPLAY" "$WORK/does-not-exist.lwt.zst" --allocator=glibc >/dev/null 2>"$WORK/e3"
  expect_error "missing trace" 2 "$WORK/e3" $? "does-not-exist"
  head -c 5000 /dev/urandom >"$WORK/garbage.lwt.zst"
  "$LWREPLAY" "$WORK/garbage.lwt.zst" --allocator=glibc >/dev/null 2>"$WORK/e4"
  expect_error "not a trace" 2 "$WORK/e4" $? "garbage.lwt.zst"
  "$LWREPLAY" --synth=churn,100 --allocator=null --touch >/dev/null 2>"$WORK/e8"
  expect_error "null allocator refuses --touch" 1 "$WORK/e8" $? "null allocator"
  "$LWREPLAY" --synth=handoff,20000,3 --allocator=null --check >"$WORK/null.txt" 2>&1 &&
    ok "null allocator replays (engine only)" || fail "null allocator: $(cat "$WORK/null.txt")"
  "$LWREPLAY" --synth=churn,100 --runs 0 >/dev/null 2>"$WORK/e5"
  expect_error "bad --runs" 2 "$WORK/e5" $? "runs"
  ;;
violations)
  # ARG is liblwr-badalloc.so: glibc that turns bad after 5000 mallocs.
  "$LWREPLAY" --synth=churn,40000 --allocator="$ARG" >"$WORK/v0.txt" 2>"$WORK/v0.err" &&
    grep -q "malloc from .*lwr-badalloc" "$WORK/v0.txt" && ok "PATH.so replays, malloc from it" ||
    fail "PATH.so: $(cat "$WORK/v0.err")"
  BADALLOC_MODE=null "$LWREPLAY" --synth=churn,40000 --allocator="$ARG" >/dev/null 2>"$WORK/v1"
  expect_error "NULL result" 1 "$WORK/v1" $? "lwr-badalloc.so MALLOC seq [0-9]* (thread 0, size [0-9]*): returned NULL where the trace had success"
  BADALLOC_MODE=misalign "$LWREPLAY" --synth=churn,40000 --allocator="$ARG" >/dev/null 2>"$WORK/v2"
  expect_error "misaligned result" 1 "$WORK/v2" $? "MALLOC seq [0-9]* .*: result not aligned as asked"
  BADALLOC_MODE=overlap "$LWREPLAY" --synth=churn,40000 --allocator="$ARG" --check >/dev/null 2>"$WORK/v3"
  expect_error "overlapping result (--check)" 1 "$WORK/v3" $? "MALLOC seq [0-9]* .*: result overlaps a live block"
  ;;
corrupt)
  t=$(record "$ARG") || exit 1
  size=$(wc -c < "$t")
  head -c $((size * 2 / 3)) "$t" >"$WORK/truncated.lwt.zst"
  "$LWREPLAY" "$WORK/truncated.lwt.zst" --allocator=glibc >/dev/null 2>"$WORK/c1"
  expect_error "truncated trace" 2 "$WORK/c1" $? "truncated.lwt.zst"
  # Overwrite 64 bytes in the middle of the compressed stream.
  cp "$t" "$WORK/corrupt.lwt.zst"
  printf '%064d' 0 | dd of="$WORK/corrupt.lwt.zst" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
  "$LWREPLAY" "$WORK/corrupt.lwt.zst" --allocator=glibc >/dev/null 2>"$WORK/c2"
  expect_error "corrupt trace" 2 "$WORK/c2" $? "corrupt.lwt.zst"
  ;;
recorded)
  t=$(record "$ARG") || exit 1
  replay_trace "$t"
  case $ARG in
  *handoff*) # 20000 blocks made by main, freed by the consumer thread
    n=$(json "$WORK/$(basename "$t").g2.json" 'd["handoffs"]')
    [ "$n" -ge 20000 ] && ok "hand-offs in the plan: $n" || fail "hand-offs: $n < 20000" ;;
  *thread_churn*) # each of 300 threads frees its predecessor's block
    n=$(json "$WORK/$(basename "$t").g2.json" 'd["handoffs"]')
    [ "$n" -ge 299 ] && ok "hand-offs between short-lived threads: $n" || fail "hand-offs: $n < 299" ;;
  esac
  ;;
trace)
  replay_trace "$ARG"
  # Golden values, where the trace has them: the plan must not drift.
  exp="$(dirname "$ARG")/expected.txt"
  name=$(basename "$ARG")
  if [ -f "$exp" ] && grep -q "^$name " "$exp"; then
    want=$(grep "^$name " "$exp" | cut -d' ' -f2-)
    got=$(json "$WORK/$name.g2.json" '" ".join(str(x) for x in (d["ops"], d["threads"], d["handoffs"], d["trace_peak_live_bytes"], d["op_hash"]))')
    [ "$got" = "$want" ] && ok "$name: as expected.txt ($got)" || fail "$name: got '$got', expected.txt has '$want'"
  fi
  ;;
none)
  echo "SKIP: no committed traces in traces/ yet (the recorded-* tests replay fresh ones)"
  exit 77
  ;;
*)
  echo "unknown case $CASE"
  exit 1
  ;;
esac
[ $fails -eq 0 ] && echo "PASS" && exit 0
echo "$fails failure(s)"
exit 1
