#!/usr/bin/env python3
"""Checks `lwtrace info --json` output (argv[1]) against an expectation
file (argv[2]) written by a test program:
  tid TID OP COUNT   exact count of OP on thread TID (or LO..HI)
  op OP COUNT        exact count of OP over the whole trace (min: ">=COUNT")
  peak_min / peak_max / final_max / lost_max / threads_min BYTES|N
  top LIST FUNC BLOCKS BYTES   the first stack of LIST (peak_stacks,
                               live_at_end_stacks) starts in FUNC and
                               holds exactly these blocks and bytes
Prints every mismatch; exit 1 if any."""
import json
import sys

info = json.load(open(sys.argv[1]))
bad = 0
threads = {t["tid"]: t for t in info["threads"]}


def fail(msg):
    global bad
    bad += 1
    print("MISMATCH:", msg)


for line in open(sys.argv[2]):
    f = line.split()
    if not f:
        continue
    if f[0] == "tid":
        tid, op = int(f[1]), f[2]
        lo, _, hi = f[3].partition("..")
        lo, hi = int(lo), int(hi or lo)
        got = threads.get(tid, {"ops": {}})["ops"].get(op, 0)
        if not lo <= got <= hi:
            fail(f"thread {tid} {op}: trace {got}, program {f[3]}")
    elif f[0] == "op":
        op, want = f[1], f[2]
        got = info["ops"].get(op, 0)
        if want.startswith(">="):
            if got < int(want[2:]):
                fail(f"{op}: trace {got} < {want[2:]}")
        elif got != int(want):
            fail(f"{op}: trace {got}, program {want}")
    elif f[0] == "peak_min" and info["peak_live_bytes"] < int(f[1]):
        fail(f"peak {info['peak_live_bytes']} < {f[1]}")
    elif f[0] == "peak_max" and info["peak_live_bytes"] > int(f[1]):
        fail(f"peak {info['peak_live_bytes']} > {f[1]}")
    elif f[0] == "final_max" and info["final_live_bytes"] > int(f[1]):
        fail(f"final live {info['final_live_bytes']} > {f[1]}")
    elif f[0] == "lost_max" and info["lost"] > int(f[1]):
        fail(f"lost {info['lost']} > {f[1]}")
    elif f[0] == "threads_min" and len(info["threads"]) < int(f[1]):
        fail(f"threads {len(info['threads'])} < {f[1]}")
    elif f[0] == "top":
        top = (info.get(f[1]) or [{}])[0]
        frames = top.get("frames") or [""]
        # FUNC+0x.. or a compiler clone of it (FUNC.constprop.0+0x..)
        if not frames[0].startswith((f[2] + "+", f[2] + ".")) or top.get("blocks") != int(f[3]) \
                or top.get("bytes") != int(f[4]):
            fail(f"{f[1]}: want {f[3]} blocks, {f[4]} bytes from {f[2]}; trace {top}")
if not info["complete"]:
    fail("trace did not read to a clean end")
print("check_info: %s (%d calls, peak %d bytes)" % ("FAIL" if bad else "ok", info["calls"],
                                                     info["peak_live_bytes"]))
sys.exit(1 if bad else 0)
