"""Compares a trace's call times with the traced program's own clock.
   check_clock.py DUMP.txt PROGRAM_OUTPUT.txt
DUMP.txt: `lwtrace dump` of a trace recorded with LW_TRACE_TIME_SHIFT=0;
PROGRAM_OUTPUT.txt: clockcheck's "SIZE NS" lines (CLOCK_MONOTONIC read
right after each malloc returned). Passes when the trace's times never go
back on the thread, and when the time from the first malloc to each other
one agrees with the program's within 50 us for at least 80 % of them (the
program reads its clock after the hook, so a preemption in between only
shows as an outlier)."""
import re
import sys

dump, prog = sys.argv[1], sys.argv[2]
mine = {}
for line in open(prog):
    if line.startswith("#"):
        continue
    size, ns = line.split()
    mine[int(size)] = int(ns)
traced, last = {}, -1
for line in open(dump):
    if not line.startswith("CALL "):
        continue
    t = int(re.search(r" t=(\d+)", line).group(1))
    if t < last:
        sys.exit(f"time goes back: {last} then {t}: {line.strip()}")
    last = t
    m = re.search(r" malloc size=(\d+) ", line)
    if m and int(m.group(1)) in mine:
        traced[int(m.group(1))] = t
if sorted(traced) != sorted(mine):
    sys.exit(f"mallocs found in the trace: {len(traced)} of {len(mine)}")
first = min(mine)
errs = sorted(abs((traced[s] - traced[first]) - (mine[s] - mine[first])) for s in mine if s != first)
good = sum(e <= 50000 for e in errs)
print(f"{len(errs)} intervals, median error {errs[len(errs) // 2]} ns, max {errs[-1]} ns, "
      f"{good} within 50 us")
sys.exit(0 if good >= 0.8 * len(errs) else 1)
