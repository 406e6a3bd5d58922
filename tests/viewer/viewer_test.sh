#!/bin/bash
# lwview end-to-end tests; one case per CTest test (tests/viewer/CMakeLists.txt
# passes the tool paths in LWVIEW, LWTRACE, LWMALLOC_SO, WORKLOAD,
# TEST_VIEWER_DB and a scratch WORKDIR).
#   viewer_test.sh import|sql|tui|live|badinput|truncated|committed|memory
set -u
case_name=$1
mkdir -p "$WORKDIR"
cd "$WORKDIR" || exit 1
TRACE=$WORKDIR/wl.lwt.zst
DB=$WORKDIR/wl.db
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
check() { # check "what" actual expected
  if [ "$2" == "$3" ]; then echo "ok: $1 = $2"; else fail "$1: got '$2', want '$3'"; fi
}
json_num() { grep -o "\"$1\":[0-9]*" "$2" | head -1 | cut -d: -f2; }
summary_num() { awk -v k="$1" '$1 == k { print $2 }' "$2"; }

# ---- tmux helpers: one 80x24 session per test case ----------------------
SESSION="lwv_${case_name}_$$"
tmux_start() { # tmux_start COMMAND...: run in a fresh 80x24 session
  tmux kill-session -t "$SESSION" 2>/dev/null
  tmux new-session -d -s "$SESSION" -x 80 -y 24 "$*; echo EXIT=\$?; sleep 30"
}
screen() { tmux capture-pane -p -t "$SESSION"; }
wait_for() { # wait_for TEXT [SECONDS]: until the screen shows TEXT
  local limit=$(( ${2:-10} * 10 ))
  for ((i = 0; i < limit; i++)); do
    screen | grep -qF -- "$1" && return 0
    sleep 0.1
  done
  return 1
}
expect_screen() { # expect_screen WHAT TEXT
  if wait_for "$2" 5; then echo "ok: $1 shows '$2'"; else fail "$1: '$2' not on screen"; screen; fi
}
keys() { tmux send-keys -t "$SESSION" "$@"; sleep 0.3; }
cursor_seq() { screen | grep -o "seq [0-9]*" | head -1 | tr -dc 0-9; }
new_seq() { # new_seq OLD: the cursor's seq once it differs from OLD (5 s at most)
  local s
  for ((i = 0; i < 50; i++)); do
    s=$(cursor_seq)
    [ -n "$s" ] && [ "$s" != "$1" ] && break
    sleep 0.1
  done
  echo "$s"
}
cleanup() { tmux kill-session -t "$SESSION" 2>/dev/null; }
trap cleanup EXIT

case $case_name in
import)
  # record a known workload, import it, compare with lwtrace info --json
  rm -f "$TRACE" "$DB"
  "$LWTRACE" record -o "$TRACE" -- "$WORKLOAD" 3 20000 || { fail "lwtrace record"; exit 1; }
  "$LWTRACE" info --json "$TRACE" > info.json || fail "lwtrace info"
  "$LWVIEW" --import-only "$TRACE" > summary.txt 2> import.err || { cat import.err; fail "import"; exit 1; }
  [ -f "$DB" ] || fail "no $DB"
  check "calls" "$(summary_num calls summary.txt)" "$(json_num calls info.json)"
  check "records" "$(summary_num records summary.txt)" "$(json_num records info.json)"
  check "peak live bytes" "$(summary_num peak_live_bytes summary.txt)" "$(json_num peak_live_bytes info.json)"
  check "final live bytes" "$(summary_num final_live_bytes summary.txt)" "$(json_num final_live_bytes info.json)"
  grep -q "imported" import.err || fail "first run did not import"
  # a second run must not re-import; a changed trace must
  "$LWVIEW" --import-only "$TRACE" > /dev/null 2> import2.err
  grep -q "imported" import2.err && fail "re-imported an unchanged trace"
  touch -d "2 minutes ago" "$TRACE"
  "$LWVIEW" --import-only "$TRACE" > /dev/null 2> import3.err
  grep -q "imported" import3.err || fail "did not re-import a changed trace"
  ;;
sql)
  [ -f "$DB" ] || { fail "no database (viewer_import must run first)"; exit 1; }
  q() { sqlite3 -batch -noheader "$DB" "$1"; }
  check "calls rows" "$(q 'SELECT count(*) FROM calls')" "$(q "SELECT value FROM meta WHERE key='calls'")"
  check "events view rows" "$(q 'SELECT count(*) FROM events')" "$(q 'SELECT count(*) FROM calls')"
  check "one block per successful allocation" "$(q 'SELECT count(*) FROM blocks')" \
    "$(q 'SELECT count(*) FROM calls WHERE addr IS NOT NULL')"
  check "leaked bytes = final live bytes" "$(q 'SELECT sum(leaked_bytes) FROM sites')" \
    "$(q "SELECT value FROM meta WHERE key='final_live_bytes'")"
  check "live blocks at the peak add up to the peak" \
    "$(q "SELECT sum(size) FROM blocks, (SELECT value AS p FROM meta WHERE key='peak_live_seq')
          WHERE seq <= p AND (end_seq IS NULL OR end_seq > p)")" \
    "$(q "SELECT value FROM meta WHERE key='peak_live_bytes'")"
  # the workload leaks exactly 7 blocks of 333 bytes from leak_site()
  check "leak site symbolised, counted" \
    "$(q "SELECT sum(s.leaked) || ' ' || sum(s.leaked_bytes) FROM sites s JOIN stacks st ON st.id = s.stack_id WHERE st.site LIKE 'leak_site+%'")" "7 2331"
  check "frames symbolised from ELF" \
    "$(q "SELECT count(*) > 0 FROM stack_frames WHERE func = 'worker' AND module LIKE '%vw_workload'")" "1"
  check "source lines through addr2line" \
    "$(q "SELECT count(*) > 0 FROM stack_frames WHERE func = 'leak_site' AND source LIKE '%vw_workload.c:%'")" "1"
  check "threads" "$(q 'SELECT count(*) FROM threads WHERE allocs > 0')" "4"
  check "time index covers every call" "$(q 'SELECT sum(calls) FROM time_index')" "$(q 'SELECT count(*) FROM calls')"
  check "coalesce runs view" "$(q 'SELECT count(*) FROM coalesce_runs')" \
    "$(json_num COALESCE_RUN info.json)"
  check "lifetimes end after they start" "$(q 'SELECT count(*) FROM blocks WHERE end_seq <= seq')" "0"
  "$TEST_VIEWER_DB" "$DB" || fail "test_viewer_db"
  ;;
tui)
  [ -f "$DB" ] || { fail "no database (viewer_import must run first)"; exit 1; }
  tmux_start "$LWVIEW" "$DB"
  expect_screen overview "1:Overview"
  expect_screen overview "# live  : committed  . mapped"
  expect_screen overview "peak live"
  # the cursor starts at the end: everything but the leaks is freed
  expect_screen "overview at end" "in 10 blocks"
  seq_end=$(cursor_seq)
  keys Home
  seq_home=$(new_seq "$seq_end")
  [ -n "$seq_home" ] && [ -n "$seq_end" ] && [ "$seq_home" -lt 10 ] && [ "$seq_end" -gt 1000 ] \
    && echo "ok: Home moves the cursor from seq $seq_end to $seq_home" \
    || fail "Home: seq '$seq_end' -> '$seq_home'"
  cursor_time() { screen | sed -n 2p | awk '{ print $2, $3 }'; }
  t_home=$(cursor_time)
  keys Right
  for ((i = 0; i < 50; i++)); do [ "$(cursor_time)" != "$t_home" ] && break; sleep 0.1; done
  seq_right=$(cursor_seq)
  [ "$(cursor_time)" != "$t_home" ] && [ -n "$seq_right" ] && [ "$seq_right" -ge "$seq_home" ] \
    && echo "ok: Right moves the cursor from $t_home to $(cursor_time) (seq $seq_right)" \
    || fail "Right: cursor stayed at $t_home (seq $seq_right)"
  keys p
  seq_peak=$(new_seq "$seq_right")
  check "p: cursor at the peak's call" "$seq_peak" \
    "$(sqlite3 "$DB" "SELECT value FROM meta WHERE key='peak_live_seq'")"
  peak_line=$(screen | grep "at cursor")
  t_peak=$(cursor_time)
  keys Left
  for ((i = 0; i < 50; i++)); do [ "$(cursor_time)" != "$t_peak" ] && break; sleep 0.1; done
  seq_left=$(cursor_seq)
  [ "$(cursor_time)" != "$t_peak" ] && [ -n "$seq_left" ] && [ "$seq_left" -le "$seq_peak" ] \
    && echo "ok: Left moves from the peak ($t_peak, seq $seq_peak) to $(cursor_time) (seq $seq_left)" \
    || fail "Left: cursor stayed at $t_peak (seq $seq_left)"
  keys End
  check "End returns to the last call" "$(new_seq "$seq_left")" "$seq_end"
  keys '?'
  expect_screen help "Keys (any key closes)"
  expect_screen help "mark start / end of a time range"
  keys x
  wait_for "Keys (any key" 1 && fail "help did not close"
  keys 2
  expect_screen pools "used / total slots"
  expect_screen pools "16 B"
  keys 3
  expect_screen frag "external fragmentation"
  expect_screen frag "one cell ="
  keys 4
  expect_screen coalesce "sorted by time"
  keys s s
  expect_screen "coalesce sort" "sorted by bytes"
  keys 5
  expect_screen sites "live@cur"
  keys s s s
  expect_screen "sites sort" "sort: leaked bytes"
  expect_screen "sites leak" "leak_site+0x"
  keys Enter
  expect_screen "expanded stack" "main+0x"
  expect_screen "expanded stack" "7 allocations"
  expect_screen "expanded stack" "vw_workload.c:"
  keys Escape
  keys 6
  expect_screen threads "allocated"
  # a time range: mark start at the beginning, end at the peak
  keys Home '[' p ']'
  wait_for "range " 3; screen | grep -qE "range [0-9.]+ [mun]?s - [0-9.]+ [mun]?s" \
    && echo "ok: range shown" || fail "range not shown"
  keys 5
  expect_screen "sites in range" "(range)"
  keys BSpace
  # resize: larger, then too small, then back
  tmux resize-window -t "$SESSION" -x 120 -y 40 2>/dev/null || tmux resize-pane -t "$SESSION" -x 120 -y 40
  sleep 0.3
  expect_screen "resized" "6:Threads"
  tmux resize-window -t "$SESSION" -x 60 -y 20 2>/dev/null || tmux resize-pane -t "$SESSION" -x 60 -y 20
  expect_screen "too small" "terminal too small"
  tmux resize-window -t "$SESSION" -x 80 -y 24 2>/dev/null || tmux resize-pane -t "$SESSION" -x 80 -y 24
  expect_screen "back to 80x24" "1:Overview"
  keys q
  expect_screen quit "EXIT=0"
  echo "peak: $peak_line"
  ;;
live)
  [ -e /dev/shm ] || { echo "no /dev/shm: skipped"; exit 0; }
  out=$WORKDIR/live.out
  LD_PRELOAD=$LWMALLOC_SO LW_LIVE=1 "$WORKLOAD" 2 2000 4 > "$out" &
  pid=$!
  for ((i = 0; i < 50; i++)); do [ -e /dev/shm/lwmalloc.$pid ] && break; sleep 0.1; done
  [ -e /dev/shm/lwmalloc.$pid ] || fail "no live page /dev/shm/lwmalloc.$pid"
  tmux_start "$LWVIEW" --pid $pid
  expect_screen "live view" "pid $pid  running"
  expect_screen "live view" "1:Live"
  expect_screen "live counters" "coalesce runs"
  n1=$(screen | grep -o "update #[0-9]*" | tr -dc 0-9)
  sleep 1
  n2=$(screen | grep -o "update #[0-9]*" | tr -dc 0-9)
  # the page updates 10x/s and lwview redraws 5x/s: a second shows >= 4 new updates
  if [ -n "$n1" ] && [ -n "$n2" ] && [ $((n2 - n1)) -ge 4 ]; then echo "ok: updates $n1 -> $n2 in 1 s"
  else fail "live view not refreshing ($n1 -> $n2)"; fi
  keys 2
  expect_screen "live pools" "used / total slots"
  wait $pid
  expect_screen "process exit noticed" "EXITED"
  [ -e /dev/shm/lwmalloc.$pid ] && fail "live page left behind after exit"
  keys q
  expect_screen quit "EXIT=0"
  # a process that does not run lwmalloc, and one that does not exist
  sleep 5 & other=$!
  msg=$("$LWVIEW" --pid $other 2>&1); rc=$?
  kill $other
  check "pid without a live page: status" "$rc" "1"
  [[ "$msg" == *"no lwmalloc live page"* ]] && echo "ok: $msg" || fail "message: $msg"
  msg=$("$LWVIEW" --pid 999999999 2>&1); rc=$?
  check "missing pid: status" "$rc" "1"
  [[ "$msg" == *"no such process"* ]] && echo "ok: $msg" || fail "message: $msg"
  ;;
badinput)
  one_line_error() { # one_line_error WHAT EXPECTED_TEXT COMMAND...
    local what=$1 text=$2; shift 2
    local msg rc
    msg=$("$@" 2>&1 < /dev/null); rc=$?
    if [ $rc -ne 0 ] && [ "$(printf '%s\n' "$msg" | wc -l)" -eq 1 ] && [[ "$msg" == *"$text"* ]]; then
      echo "ok: $what: $msg"
    else
      fail "$what: status $rc, message '$msg'"
    fi
  }
  one_line_error "missing file" "No such file" "$LWVIEW" --import-only "$WORKDIR/does-not-exist.lwt.zst"
  head -c 5000 /dev/urandom > garbage.bin
  one_line_error "garbage file" "neither an lwtrace file" "$LWVIEW" --import-only garbage.bin
  printf '\x28\xb5\x2f\xfdgarbage-after-zstd-magic' > corrupt.lwt.zst
  one_line_error "corrupt trace" "corrupt.lwt.zst" "$LWVIEW" --import-only corrupt.lwt.zst
  [ -e corrupt.db ] && fail "corrupt trace left a database"
  printf 'SQLite format 3\0not really a database at all........' > fake.db
  one_line_error "fake database" "fake.db" "$LWVIEW" fake.db
  # the database cannot grow (file size limit): the writer thread's failed
  # step ends the import with one line and no database
  one_line_error "database full" "database" bash -c \
    "trap '' XFSZ; ulimit -f 256; exec \"\$0\" --import-only --db \"\$1\" \"\$2\"" \
    "$LWVIEW" "$WORKDIR/full.db" "$TRACES_DIR/threads4.lwt.zst"
  [ -e full.db ] || [ -e full.db.tmp ] && fail "a failed import left a database"
  one_line_error "bad pid" "--pid needs a process id" "$LWVIEW" --pid abc
  one_line_error "unknown option" "unknown option" "$LWVIEW" --bogus
  # terminal too small: one line, status 1, terminal restored (no alternate screen left)
  if [ -f "$DB" ]; then
    tmux kill-session -t "$SESSION" 2>/dev/null
    tmux new-session -d -s "$SESSION" -x 60 -y 20 "$LWVIEW $DB; echo EXIT=\$?; sleep 30"
    expect_screen "small terminal" "needs at least 80x24"
    expect_screen "small terminal" "EXIT=1"
  fi
  ;;
truncated)
  [ -f "$TRACE" ] || { fail "no trace (viewer_import must run first)"; exit 1; }
  size=$(stat -c %s "$TRACE")
  head -c $((size / 2)) "$TRACE" > half.lwt.zst
  "$LWVIEW" --import-only half.lwt.zst > half.txt 2> half.err; rc=$?
  check "truncated trace imports what it can" "$rc" "0"
  grep -q "warning" half.err && echo "ok: $(grep warning half.err)" || fail "no warning for a cut trace"
  calls=$(summary_num calls half.txt)
  [ -n "$calls" ] && [ "$calls" -gt 0 ] && [ "$calls" -lt "$(json_num calls info.json)" ] \
    && echo "ok: $calls calls before the cut" || fail "calls before the cut: '$calls'"
  check "error kept in meta" "$(sqlite3 half.db "SELECT count(*) FROM meta WHERE key='error'")" "1"
  ;;
committed)
  # every trace committed in traces/: import counts and peaks agree with lwtrace
  shopt -s nullglob
  traces=("$TRACES_DIR"/*.lwt.zst)
  [ ${#traces[@]} -gt 0 ] || { echo "no committed traces: nothing to check"; exit 0; }
  for t in "${traces[@]}"; do
    name=$(basename "$t" .lwt.zst)
    "$LWTRACE" info --json "$t" > "$name.json" || { fail "$name: lwtrace info"; continue; }
    "$LWVIEW" --import-only --quiet --force --db "$WORKDIR/$name.db" "$t" > "$name.txt" 2>&1 \
      || { fail "$name: import"; cat "$name.txt"; continue; }
    for key in calls records peak_live_bytes final_live_bytes; do
      check "$name: $key" "$(summary_num $key "$name.txt")" "$(json_num $key "$name.json")"
    done
    # every record back in seq order through the reorder ring, no seq left
    # unaccounted for (unless the recorder lost records)
    check "$name: late records" \
      "$(sqlite3 "$WORKDIR/$name.db" "SELECT value FROM meta WHERE key='late_records'")" "0"
    [ "$(json_num lost "$name.json")" = 0 ] && check "$name: missing seqs" \
      "$(sqlite3 "$WORKDIR/$name.db" "SELECT value FROM meta WHERE key='missing_seqs'")" "0"
  done
  # a reorder ring far too small for threads4 (whose records come up to
  # ~12 K seqs late): the late records are derived out of order, but every
  # call is imported once, counted in the time index, and the leaks agree
  t=$TRACES_DIR/threads4.lwt.zst
  if [ -f "$t" ]; then
    LWV_RING_SLOTS=1024 "$LWVIEW" --import-only --force --quiet --db "$WORKDIR/ring.db" "$t" \
      > ring.txt 2>&1 || { fail "import with a small ring"; cat ring.txt; }
    late=$(sqlite3 "$WORKDIR/ring.db" "SELECT value FROM meta WHERE key='late_records'")
    [ -n "$late" ] && [ "$late" -gt 0 ] && echo "ok: small ring: $late late records" \
      || fail "small ring: no late records ($late)"
    check "small ring: calls rows" "$(sqlite3 "$WORKDIR/ring.db" 'SELECT count(*) FROM calls')" \
      "$(json_num calls threads4.json)"
    check "small ring: time index covers every call" \
      "$(sqlite3 "$WORKDIR/ring.db" 'SELECT sum(calls) FROM time_index')" "$(json_num calls threads4.json)"
    check "small ring: final live bytes" "$(summary_num final_live_bytes ring.txt)" \
      "$(json_num final_live_bytes threads4.json)"
    # rows stepped at once (LWV_WRITER=0) or on the writer thread, live_index
    # keys sorted in memory or merged from 60-odd runs: the same database
    LWV_WRITER=0 LWV_LIVE_RUN=128 "$LWVIEW" --import-only --force --quiet --db "$WORKDIR/sync.db" "$t" \
      > sync.txt 2>&1 || { fail "import without the writer thread"; cat sync.txt; }
    if cmp -s <(sqlite3 "$WORKDIR/sync.db" .dump) <(sqlite3 "$WORKDIR/threads4.db" .dump); then
      echo "ok: the writer thread's database is the one stepped at once"
    else
      fail "LWV_WRITER=0 and the writer thread make different databases"
    fi
  fi
  ;;
memory)
  # bounded memory: the same churn (short-lived blocks, a bounded live set)
  # recorded 3x longer must import with about the same peak RSS. Keeping a
  # per-call table (72 bytes a call, as lwview did before) would add
  # ~230 MB for the 3.2 M extra calls; the reorder ring, the live map and
  # SQLite's cache do not grow with the trace (all three are full after
  # 1.6 M calls). No timing is checked.
  # Under ASan (quarantine, redzones) RSS says nothing: smaller traces,
  # correctness only.
  sizes="800000 2400000"
  [ "${LWV_SANITIZED:-0}" = 1 ] && sizes="100000 300000"
  rss=()
  for iters in $sizes; do
    t=$WORKDIR/churn$iters.lwt.zst
    "$LWTRACE" record -o "$t" -- "$WORKLOAD" 2 $iters > /dev/null 2>&1 || { fail "lwtrace record"; exit 1; }
    "$LWTRACE" info --json "$t" > churn.json || fail "lwtrace info"
    LWV_TIMING=1 "$LWVIEW" --import-only --force --quiet --db "$WORKDIR/churn.db" "$t" \
      > churn.txt 2> churn.err || { cat churn.err; fail "import"; exit 1; }
    for key in calls records peak_live_bytes final_live_bytes; do
      check "$iters iterations: $key" "$(summary_num $key churn.txt)" "$(json_num $key churn.json)"
    done
    check "$iters iterations: no record out of the ring's reach" \
      "$(sqlite3 churn.db "SELECT value FROM meta WHERE key='late_records'")" "0"
    check "$iters iterations: live blocks at the peak add up to the peak" \
      "$(sqlite3 churn.db "SELECT sum(size) FROM blocks, (SELECT value AS p FROM meta WHERE key='peak_live_seq')
          WHERE seq <= p AND (end_seq IS NULL OR end_seq > p)")" "$(summary_num peak_live_bytes churn.txt)"
    mb=$(grep -o "max RSS [0-9]*" churn.err | tr -dc 0-9)
    echo "$iters iterations: $(summary_num calls churn.txt) calls, import peak RSS $mb MB"
    rss+=("$mb")
    rm -f "$t"
  done
  [ -n "${rss[0]}" ] && [ -n "${rss[1]}" ] || { fail "no max RSS in LWV_TIMING output"; exit 1; }
  if [ "${LWV_SANITIZED:-0}" = 1 ]; then
    echo "sanitizer build: peak RSS not compared"
    rm -f "$WORKDIR/churn.db"
    exit $((failures != 0))
  fi
  growth=$((rss[1] - rss[0]))
  if [ "$growth" -le 16 ]; then echo "ok: peak RSS grew by $growth MB for 3x the calls (limit 16)"
  else fail "peak RSS grew by $growth MB for 3x the calls (limit 16): memory grows with the trace"; fi
  rm -f "$WORKDIR/churn.db"
  ;;
*)
  echo "unknown case $case_name"
  exit 2
  ;;
esac
if [ "$failures" -ne 0 ]; then echo "$failures failure(s)"; exit 1; fi
echo "all checks passed"
