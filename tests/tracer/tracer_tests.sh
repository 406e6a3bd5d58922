#!/bin/sh
# End-to-end tests of lwtrace on small programs (one CTest test per case).
#   tracer_tests.sh CASE LWTRACE PROGDIR TRACESDIR
# PROGDIR holds the test programs (fidelity, threads4, sigalloc, forker,
# trunc_test); TRACESDIR the committed golden traces.
set -u
CASE=$1 LWTRACE=$2 PROGS=$3 TRACES=$4
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d /tmp/lwtrace-test.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1
fail() { echo "FAIL ($CASE): $*"; exit 1; }
calls() { "$LWTRACE" dump "$1" | grep -c " $2 size=$3 "; } # FILE OP SIZE

case $CASE in
golden)
  for t in "$TRACES"/*.lwt.zst; do
    "$LWTRACE" info --json "$t" > info.json || fail "$t does not read cleanly"
    python3 -c 'import json,sys; i=json.load(open("info.json")); sys.exit(0 if i["calls"] > 0 and i["complete"] else 1)' \
      || fail "$t: no calls"
  done
  for t in "$TRACES"/*.lwt.zst; do
    exp=${t%.lwt.zst}.dump.expected
    [ -f "$exp" ] || continue
    "$LWTRACE" dump "$t" > got.txt || fail "dump $t"
    diff -u "$exp" got.txt > diff.txt || { head -20 diff.txt; fail "$t differs from $exp"; }
    echo "ok $t"
  done ;;
fidelity|threads4)
  "$LWTRACE" record -o t.lwt.zst -- "$PROGS/$CASE" expect.txt || fail "record"
  "$LWTRACE" info --json t.lwt.zst > info.json || fail "info"
  python3 "$HERE/check_info.py" info.json expect.txt || fail "counts"
  # top stacks named from the program's symbols, module+offset kept
  if [ "$CASE" = fidelity ]; then
    "$LWTRACE" info t.lwt.zst | grep -q "^      worker+0x[0-9a-f]* (fidelity+0x[0-9a-f]*)$" ||
      fail "top stacks not named: $("$LWTRACE" info t.lwt.zst | tail -3)"
  fi ;;
signals)
  n=$("$LWTRACE" record -o t.lwt.zst -- "$PROGS/sigalloc" 0.5) || fail "record"
  got=$(calls t.lwt.zst malloc 777)
  echo "handler allocations: program $n, trace $got"
  [ "$n" -gt 0 ] && [ "$got" = "$n" ] || fail "handler allocations: program $n, trace $got"
  "$LWTRACE" dump t.lwt.zst | grep -q '^LOST' && fail "records were lost"
  "$LWTRACE" info t.lwt.zst > /dev/null || fail "info" ;;
fork)
  "$LWTRACE" record --follow-fork -o f.lwt.zst -- "$PROGS/forker" fork child.pid || fail "record"
  child=$(cat child.pid)
  [ -f "f.$child.lwt.zst" ] || fail "no child trace f.$child.lwt.zst: $(ls)"
  [ "$(calls f.lwt.zst malloc 3131)" = 10 ] || fail "parent mallocs"
  [ "$(calls f.lwt.zst malloc 4242)" = 0 ] || fail "child calls in the parent's trace"
  [ "$(calls "f.$child.lwt.zst" malloc 4242)" = 10 ] || fail "child mallocs"
  "$LWTRACE" dump "f.$child.lwt.zst" | grep -q "^FORK .* child=$child" || fail "no FORK record"
  "$LWTRACE" dump f.lwt.zst | grep -q "^FORK " || fail "no FORK mark in the parent"
  # without --follow-fork: one file only
  mkdir nf && cd nf && "$LWTRACE" record -o f.lwt.zst -- "$PROGS/forker" fork child.pid || fail "record"
  [ "$(ls *.lwt.zst | wc -l)" = 1 ] || fail "child traced without --follow-fork: $(ls)" ;;
exec)
  "$LWTRACE" record --follow-exec -o e.lwt.zst -- "$PROGS/forker" exec || fail "record"
  [ "$(calls e.lwt.zst malloc 5151)" = 10 ] || fail "calls before exec"
  "$LWTRACE" dump e.lwt.zst | grep -q "^EXEC " || fail "no EXEC record before exec"
  second=$(ls e.*.lwt.zst 2>/dev/null | head -1)
  [ -n "$second" ] || fail "no trace of the exec'd image: $(ls)"
  [ "$(calls "$second" malloc 6161)" = 10 ] || fail "calls after exec"
  "$LWTRACE" dump "$second" | grep -q "^EXEC " || fail "no EXEC record in the new image"
  mkdir ne && cd ne && "$LWTRACE" record -o e.lwt.zst -- "$PROGS/forker" exec || fail "record"
  [ "$(ls *.lwt.zst | wc -l)" = 1 ] || fail "exec followed without --follow-exec" ;;
sigkill)
  "$LWTRACE" record -o k.lwt.zst -- "$PROGS/forker" spin &
  rec=$!
  sleep 2.5
  prog=$(pgrep -P $rec)
  [ -n "$prog" ] || fail "traced program not found"
  kill -KILL "$prog"
  wait $rec
  st=$?
  [ $st = 137 ] || fail "exit status $st, want 137 (128+SIGKILL)"
  "$LWTRACE" info --json k.lwt.zst > info.json || fail "killed trace does not read cleanly"
  python3 -c 'import json,sys; i=json.load(open("info.json")); sys.exit(0 if i["calls"]>10000 and not i["ended"] else 1)' \
    || fail "killed trace: $(cat info.json | head -c 300)" ;;
truncation)
  LW_TRACE_FRAME_MS=20 "$LWTRACE" record -o m.lwt.zst -- "$PROGS/sigalloc" 0.15 > /dev/null || fail "record"
  "$PROGS/trunc_test" m.lwt.zst || fail "reader" ;;
cli)
  "$LWTRACE" > /dev/null 2>&1; [ $? = 2 ] || fail "no args: want exit 2"
  "$LWTRACE" record --bogus -- true 2> err.txt; [ $? = 2 ] || fail "bad flag: want exit 2"
  grep -q usage err.txt || fail "no usage line"
  "$LWTRACE" info > /dev/null 2>&1; [ $? = 2 ] || fail "info without file: want exit 2"
  "$LWTRACE" record -o x.lwt.zst -- sh -c 'exit 7'; [ $? = 7 ] || fail "exit status not passed through"
  "$LWTRACE" record -o y.lwt.zst -- sh -c 'kill -TERM $$'; [ $? = 143 ] || fail "signal status not 128+15"
  # default name: PROG.PID.lwt.zst, PROG as run (a link's name, not its target's)
  mkdir dflt && ln -s "$PROGS/sigalloc" dflt/linkedprog
  (cd dflt && "$LWTRACE" record -- ./linkedprog 0.05 > /dev/null) || fail "record without -o"
  ls dflt/linkedprog.[0-9]*.lwt.zst > /dev/null 2>&1 || fail "default name: $(ls dflt)"
  # truncated file: every record printed, then one error line, exit 1
  LW_TRACE_FRAME_MS=20 "$LWTRACE" record -o m.lwt.zst -- "$PROGS/sigalloc" 0.1 > /dev/null
  full=$("$LWTRACE" dump m.lwt.zst | wc -l)
  size=$(stat -c %s m.lwt.zst)
  head -c $((size - 7)) m.lwt.zst > cut.lwt.zst
  "$LWTRACE" dump cut.lwt.zst > out.txt 2> err.txt; st=$?
  [ $st = 1 ] || fail "truncated dump: exit $st"
  [ "$(wc -l < err.txt)" = 1 ] || fail "want one error line: $(cat err.txt)"
  grep -q "^cut.lwt.zst: offset [0-9]*: " err.txt || fail "error line: $(cat err.txt)"
  n=$(wc -l < out.txt)
  [ "$n" -gt 10 ] && [ "$n" -lt "$full" ] || fail "records before the cut: $n of $full"
  "$LWTRACE" info cut.lwt.zst > /dev/null 2> err.txt; [ $? = 1 ] || fail "truncated info: want exit 1"
  printf 'not a trace' > junk.lwt.zst
  "$LWTRACE" info junk.lwt.zst 2> err.txt; [ $? = 1 ] || fail "junk: want exit 1"
  grep -q "^junk.lwt.zst: offset 0: " err.txt || fail "junk error: $(cat err.txt)" ;;
diskfull)
  # a 64 KiB tmpfs (needs root; skipped otherwise) and a program whose trace
  # is 0.6-1.4 MB (how well it compresses depends on how the 4 threads
  # interleaved: 20000 blocks a thread once made 63 KB on CI, 113-137 KB
  # here): recording stops with one message, the program carries on, the
  # file is cut back to whole frames
  mkdir fs
  mount -t tmpfs -o size=64k tmpfs fs 2> /dev/null || { echo "skip: cannot mount a tmpfs"; exit 77; }
  trap 'umount "$WORK/fs" 2> /dev/null; rm -rf "$WORK"' EXIT
  # zstd level 1: the trace's size must not depend on how idle the writer
  # was (the adaptive level shrank it under 64 KiB on a loaded machine)
  LW_TRACE_ZSTD_LEVEL=1 "$LWTRACE" record -o fs/t.lwt.zst -- "$PROGS/threads4" expect.txt 200000 2> err.txt; st=$?
  [ $st = 0 ] || fail "program status $st"
  [ "$(grep -c 'recording stopped' err.txt)" = 1 ] || fail "want one message: $(cat err.txt)"
  "$LWTRACE" info fs/t.lwt.zst > /dev/null || fail "trace not cut back to whole frames" ;;
clock)
  # record times against the program's clock, with the CPU counter (where
  # this machine's kernel uses it as its clock) and with clock_gettime
  for c in counter mono; do
    LW_TRACE_CLOCK=$c LW_TRACE_TIME_SHIFT=0 "$LWTRACE" record -o c.lwt.zst -- "$PROGS/clockcheck" 30 \
      > prog.txt || fail "record ($c)"
    "$LWTRACE" dump c.lwt.zst > dump.txt || fail "dump ($c)"
    python3 "$HERE/check_clock.py" dump.txt prog.txt || fail "times ($c)"
    rm -f c.lwt.zst
  done ;;
allocstacks)
  # --alloc-stacks: calls that return a block have a stack, frees none
  "$LWTRACE" record --alloc-stacks -o a.lwt.zst -- "$PROGS/fidelity" expect.txt || fail "record"
  "$LWTRACE" info --json a.lwt.zst > info.json || fail "info"
  python3 "$HERE/check_info.py" info.json expect.txt || fail "counts"
  "$LWTRACE" dump a.lwt.zst > dump.txt || fail "dump"
  grep -q '^HEADER version=2\.1 .* flags=0x41 ' dump.txt || fail "header: $(head -1 dump.txt)"
  grep -q '^CALL .* free .*stack=' dump.txt && fail "a free has a stack"
  grep -q '^CALL .* malloc .*stack=[1-9]' dump.txt || fail "no malloc has a stack"
  grep '^CALL .* malloc ' dump.txt | grep -v -q 'stack=' && fail "a malloc without a stack"
  # ... which is the default; --all-stacks gives frees their stacks too
  "$LWTRACE" record -o d.lwt.zst -- "$PROGS/fidelity" expect.txt || fail "record (default)"
  "$LWTRACE" dump d.lwt.zst | grep -q '^HEADER version=2\.1 .* flags=0x41 ' || fail "default is not alloc stacks"
  "$LWTRACE" record --all-stacks -o s.lwt.zst -- "$PROGS/fidelity" expect.txt || fail "record (--all-stacks)"
  "$LWTRACE" dump s.lwt.zst > all.txt || fail "dump (--all-stacks)"
  grep -q '^HEADER version=2\.1 .* flags=0x1 ' all.txt || fail "--all-stacks header: $(head -1 all.txt)"
  grep -q '^CALL .* free .*stack=[1-9]' all.txt || fail "--all-stacks: no free has a stack"
  : ;;
dlclose)
  # a library loaded and unloaded 200 times while recording (dlclose is
  # interposed: the stack walk's cached rules of the object go with it)
  [ "$("$LWTRACE" record -o d.lwt.zst -- "$PROGS/dlcloser" "$PROGS/libtracer_unwind_lib.so")" = ok ] ||
    fail "program"
  [ "$(calls d.lwt.zst malloc 150)" = 1 ] && [ "$(calls d.lwt.zst malloc 299)" = 1 ] || fail "calls" ;;
*) fail "unknown case" ;;
esac
echo "ok $CASE"
