#!/usr/bin/env python3
"""The speed and memory race: runs every workload under every allocator.

Started by bench/run.sh (which installs the peers and builds the programs);
see that file for the command line. For each run k, each workload runs once
under every allocator, in an order rotated by k, so that slow drifts of the
machine (frequency, page cache, other jobs) spread over all allocators.

Measured per run (lwb-run: fork, LD_PRELOAD, wait4):
  time     the workload's own work_s for the synthetic workloads (excludes
           process start and, for frag, the 1 s RSS-settle wait), the wall
           time of the client for redis/mosquitto, the process wall time for
           sqlite3/python3
  rss      peak RSS (ru_maxrss) of the process that holds the allocator
  waste    (peak RSS - base RSS) - (peak live - base live) requested bytes;
           base = before the first allocation (workloads) or a trivial run of
           the same program under the same allocator (real programs)
Ratios to glibc are the median of paired ratios: each result divided by
glibc's result of the same run (and repetition), which ran next to it under
the same machine load, not one median divided by another. The client/server
workloads (SERVERS) are the noisiest (two processes share the 2 cores with
whatever else runs), so each of their runs repeats them --server-reps times.
A ratio marked "~" has a paired-ratio interquartile range that straddles
1.00: that allocator is not distinguishable from glibc on that workload.
Every result carries a checksum that must equal glibc's; a run with another
checksum, a non-zero exit or without the preloaded library in its maps is a
FAIL and is left out of the ratios.
"""
import argparse
import csv
import hashlib
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 42
ALLOCATORS = ["lw", "glibc", "mimalloc", "jemalloc", "tcmalloc"]
SYNTHETIC = ["churn", "larson", "prodcons", "realloc", "frag", "large", "tree", "aligned"]
SINGLE_THREADED = ["churn", "realloc", "frag", "large", "tree", "aligned"]
REAL = ["sqlite", "python", "redis", "mosquitto"]
WASTE_MIN_KB = 256  # waste ratios only where glibc wastes at least this much
WASTE_FLOOR_KB = 16  # wastes below this count as this much in ratios
# The servers' live bytes depend on timing (how many messages are queued
# when), so their waste is shown but left out of the waste geomean.
WASTE_APPROX = ["redis", "mosquitto"]
# Client/server workloads: time and CPU vary by +-20-40% run to run with
# the machine's load, so they are repeated within each run.
SERVERS = ["redis", "mosquitto"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def parse_kv(text, prefix=""):
    """key=value pairs of the first line starting with prefix (all lines if '')."""
    out = {}
    for line in text.splitlines():
        if prefix and not line.startswith(prefix):
            continue
        for tok in line.split():
            if "=" in tok:
                k, v = tok.split("=", 1)
                out[k] = v
        if prefix:
            break
    return out


class Ctx:
    def __init__(self, args):
        self.bin = os.path.abspath(args.bin)
        self.runner = os.path.join(self.bin, "lwb-run")
        self.glibcshim = os.path.join(self.bin, "libglibcshim.so")
        self.liveshim = os.path.join(self.bin, "libliveshim.so")
        self.scale = args.scale
        self.work = tempfile.mkdtemp(prefix="lwbench-")
        os.chmod(self.work, 0o755)  # servers that drop root still read their config
        self.libs = {"lw": os.path.abspath(args.lw) if args.lw else "", "glibc": "",
                     "mimalloc": args.mimalloc, "jemalloc": args.jemalloc, "tcmalloc": args.tcmalloc}

    def preload(self, alloc, program_links_other_malloc=False):
        if alloc == "glibc":
            return self.glibcshim if program_links_other_malloc else ""
        return self.libs[alloc]


def lwb_run(ctx, preload, argv, stdin=None, env=None, background=False, tag="run"):
    """Runs argv under lwb-run; returns a dict with wall_s, maxrss_kb, status,
    preload_seen, out, err (texts). With background=True returns the Popen
    and the file names instead; finish it with lwb_wait()."""
    out = os.path.join(ctx.work, tag + ".out")
    err = os.path.join(ctx.work, tag + ".err")
    cmd = [ctx.runner, "-o", out, "-e", err]
    if preload:
        cmd += ["-p", preload]
    if stdin:
        cmd += ["-i", stdin]
    cmd += ["--"] + argv
    full_env = dict(os.environ)
    full_env.pop("LD_PRELOAD", None)
    if env:
        full_env.update(env)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=full_env, text=True)
    if background:
        return p, out, err
    return lwb_wait(p, out, err)


def lwb_wait(p, out, err, timeout=600):
    line, _ = p.communicate(timeout=timeout)
    r = parse_kv(line)
    res = {"wall_s": float(r.get("wall_s", "nan")), "cpu_s": float(r.get("cpu_s", "nan")), "maxrss_kb": int(r.get("maxrss_kb", "0")),
           "status": int(r.get("status", "-1")), "preload_seen": int(r.get("preload_seen", "0"))}
    with open(out, errors="replace") as f:
        res["out"] = f.read()
    with open(err, errors="replace") as f:
        res["err"] = f.read()
    return res


def check_run(res, preload):
    """Error text for a failed run, or ''."""
    if res["status"] != 0:
        return "exit status %d: %s" % (res["status"], res["err"].strip()[-200:])
    if preload and res["preload_seen"] != 1:
        return "preloaded library not found in /proc/PID/maps"
    return ""


def result(time_s, rss_kb, base_rss_kb, live, base_live, checksum, error="", extra=None):
    return {"time_s": time_s, "rss_kb": rss_kb, "base_rss_kb": base_rss_kb, "live_bytes": live,
            "base_live_bytes": base_live, "checksum": checksum, "error": error, "extra": extra or {}}


# ---- synthetic workloads ----------------------------------------------------
def run_synthetic(ctx, name, alloc, scale=None, flags=()):
    preload = ctx.preload(alloc)
    argv = [os.path.join(ctx.bin, "lwb-" + name), str(SEED), "%g" % (scale or ctx.scale)] + list(flags)
    res = lwb_run(ctx, preload, argv, tag=name)
    lwb = parse_kv(res["err"], "LWB ")
    checksum = res["out"].split()[-1] if res["out"].split() else ""
    error = check_run(res, preload)
    if not error and "work_s" not in lwb:
        error = "no LWB line on stderr"
    extra = {k: v for k, v in lwb.items()
             if k not in ("workload", "work_s", "base_rss_kb", "peak_live_bytes")}
    extra["wall_s"] = res["wall_s"]
    extra["cpu_s"] = res["cpu_s"]
    return result(float(lwb.get("work_s", "nan")), res["maxrss_kb"], int(lwb.get("base_rss_kb", 0)),
                  int(lwb.get("peak_live_bytes", 0)), 0, checksum, error, extra)


# ---- real programs ----------------------------------------------------------
class Sqlite:
    """sqlite3 :memory: running a generated script (inserts, indexes, queries)."""
    name = "sqlite"
    links_other_malloc = False

    def __init__(self, ctx):
        self.sql = os.path.join(ctx.work, "bench.sql")
        rows = max(1000, int(100000 * ctx.scale))
        with open(self.sql, "w") as f:
            subprocess.run([sys.executable, os.path.join(HERE, "real", "sqlite_gen.py"), str(SEED), str(rows)],
                           stdout=f, check=True)
        self.trivial_sql = os.path.join(ctx.work, "trivial.sql")
        with open(self.trivial_sql, "w") as f:
            f.write("SELECT 1;\n")

    def run(self, ctx, preload, env=None, trivial=False):
        res = lwb_run(ctx, preload, ["sqlite3", ":memory:"], stdin=self.trivial_sql if trivial else self.sql,
                      env=env, tag="sqlite")
        return res, hashlib.md5(res["out"].encode()).hexdigest()[:16]


class Python:
    """python3 with PYTHONMALLOC=malloc doing dict/list/string work."""
    name = "python"
    links_other_malloc = False
    ENV = {"PYTHONMALLOC": "malloc", "PYTHONHASHSEED": "0"}

    def __init__(self, ctx):
        self.script = os.path.join(HERE, "real", "py_work.py")
        self.scale = ctx.scale * 0.4

    def run(self, ctx, preload, env=None, trivial=False):
        argv = ["/usr/bin/python3", "-c", "pass"] if trivial else \
            ["/usr/bin/python3", self.script, str(SEED), "%g" % self.scale]
        res = lwb_run(ctx, preload, argv, env=dict(self.ENV, **(env or {})), tag="python")
        return res, res["out"].split()[-1] if res["out"].split() else ""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=15):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def child_pid(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            kids = f.read().split()
        return int(kids[0]) if kids else None
    except OSError:
        return None


class Server:
    """A server started under lwb-run on a free 127.0.0.1 port; the load is
    a bounded client run; time is the client's wall time, RSS the server's."""
    links_other_malloc = False

    def run(self, ctx, preload, env=None, trivial=False):
        port = free_port()
        proc, out, err = lwb_run(ctx, preload, self.server_argv(ctx, port), env=env,
                                 background=True, tag=self.name)
        checksum, client_s, error = "", float("nan"), ""
        try:
            if not wait_port(port, proc):
                error = "server did not start"
            elif not trivial:
                spid = child_pid(proc.pid)
                if preload and spid:
                    with open("/proc/%d/maps" % spid) as f:
                        if os.path.basename(preload) not in f.read():
                            error = "preloaded library not in server maps"
                checksum, client_s = self.load(ctx, port)
        except (subprocess.SubprocessError, OSError) as e:
            error = "client failed: %s" % e
        finally:
            self.stop(ctx, port, proc)
        res = lwb_wait(proc, out, err, timeout=60)
        if error:
            res["status"] = res["status"] or 1
            res["err"] += "\n" + error
        res["wall_s"] = client_s
        return res, checksum

    def stop(self, ctx, port, proc):
        spid = child_pid(proc.pid)
        if spid:
            try:
                os.kill(spid, 15)
            except ProcessLookupError:
                pass


class Redis(Server):
    """redis-server + redis-benchmark (SET/GET/INCR/LPUSH/LPOP/HSET, random
    keys). Debian's redis-server links libjemalloc, so its glibc run
    preloads libglibcshim.so."""
    name = "redis"
    links_other_malloc = True

    def __init__(self, ctx):
        self.n = max(2000, int(60000 * ctx.scale))
        self.script = os.path.join(ctx.work, "redis-load.resp")
        keys = max(2000, int(20000 * ctx.scale))
        with open(self.script, "wb") as f:
            def cmd(*args):
                f.write(b"*%d\r\n" % len(args))
                for a in args:
                    a = a.encode() if isinstance(a, str) else a
                    f.write(b"$%d\r\n%s\r\n" % (len(a), a))
            cmd("SELECT", "1")
            for i in range(keys):
                cmd("SET", "k:%d" % i, "v%d-" % i + "x" * ((i * 7919) % 900))
                cmd("RPUSH", "q:%d" % (i % 64), "item-%d" % i)
                cmd("HSET", "h:%d" % (i % 256), "f%d" % i, "%d" % (i * i))
                if i % 5 == 0:
                    cmd("DEL", "k:%d" % (i // 2))
                if i % 3 == 0:
                    cmd("LPOP", "q:%d" % ((i * 13) % 64))

    def server_argv(self, ctx, port):
        return ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--daemonize", "no", "--dir", ctx.work, "--loglevel", "warning"]

    def cli(self, port, *args):
        return subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port)] + list(args),
                              capture_output=True, text=True, timeout=60, check=True).stdout.strip()

    def load(self, ctx, port):
        t0 = time.monotonic()
        subprocess.run(["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-n", str(self.n), "-q",
                        "-c", "16", "-P", "8", "-r", "100000", "-d", "180",
                        "-t", "set,get,incr,lpush,lpop,hset"],
                       capture_output=True, text=True, timeout=300, check=True)
        # Which random keys the benchmark's clients hit depends on
        # scheduling, so the checksum comes from a deterministic second
        # load, piped into database 1.
        with open(self.script, "rb") as f:
            subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), "--pipe"], stdin=f,
                           capture_output=True, timeout=300, check=True)
        seconds = time.monotonic() - t0
        digest = hashlib.md5(self.cli(port, "-n", "1", "--raw", "MGET", *["k:%d" % i for i in range(0, 20000, 97)])
                             .encode()).hexdigest()[:8]
        return "db%s-list%s-%s" % (self.cli(port, "-n", "1", "DBSIZE"), self.cli(port, "-n", "1", "LLEN", "q:7"),
                                   digest), seconds

    def stop(self, ctx, port, proc):
        try:
            self.cli(port, "SHUTDOWN", "NOSAVE")
        except subprocess.SubprocessError:
            pass  # SHUTDOWN closes the connection: redis-cli may report it
        for _ in range(100):
            if proc.poll() is not None:
                return
            time.sleep(0.05)
        super().stop(ctx, port, proc)


class Mosquitto(Server):
    """mosquitto broker; 4 publishers (QoS 1, 16 B - 2 KiB payloads) to 2
    subscribers of bench/#, which must receive every message."""
    name = "mosquitto"

    def __init__(self, ctx):
        self.per_topic = max(500, int(6000 * ctx.scale))
        self.payloads = []
        for t in range(4):
            path = os.path.join(ctx.work, "mqtt%d.txt" % t)
            with open(path, "w") as f:
                for i in range(self.per_topic):
                    n = 16 + (i * 7919 + t * 104729) % 2000
                    f.write(("t%d-%06d-" % (t, i)) + "x" * n + "\n")
            self.payloads.append(path)

    def server_argv(self, ctx, port):
        conf = os.path.join(ctx.work, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    "max_queued_messages 0\nlog_dest none\n" % port)
        return ["mosquitto", "-c", conf]

    def load(self, ctx, port):
        total = 4 * self.per_topic
        base = ["-h", "127.0.0.1", "-p", str(port), "-q", "1"]
        subs = [subprocess.Popen(["mosquitto_sub"] + base + ["-t", "bench/#", "-C", str(total), "-W", "120"],
                                 stdout=subprocess.PIPE, text=True) for _ in range(2)]
        time.sleep(0.3)  # let the subscriptions reach the broker
        t0 = time.monotonic()
        pubs = []
        for t, path in enumerate(self.payloads):
            with open(path) as f:
                pubs.append(subprocess.Popen(["mosquitto_pub"] + base + ["-t", "bench/t%d" % t, "-l"], stdin=f))
        for p in pubs:
            p.wait(timeout=120)
        digests = []
        for s in subs:
            out, _ = s.communicate(timeout=130)
            lines = out.splitlines()
            digests.append("%d:%s" % (len(lines), hashlib.md5("\n".join(sorted(lines)).encode()).hexdigest()[:8]))
        return ",".join(digests), time.monotonic() - t0


REAL_CLASSES = {"sqlite": Sqlite, "python": Python, "redis": Redis, "mosquitto": Mosquitto}


class RealWorkload:
    """Wraps a real program: per-allocator baseline (trivial run) and one
    liveshim run of the full and the trivial load for the live bytes."""

    def __init__(self, ctx, name):
        self.prog = REAL_CLASSES[name](ctx)
        self.name = name
        self.base = {}
        self.live = None

    def measure_live(self, ctx):
        vals = []
        for trivial in (False, True):
            path = os.path.join(ctx.work, "live-%s-%d.txt" % (self.name, trivial))
            # Servers may drop root (mosquitto runs as user mosquitto):
            # the file must exist and be writable by anyone beforehand.
            with open(path, "w"):
                pass
            os.chmod(path, 0o666)
            self.prog.run(ctx, ctx.liveshim, env={"LWB_LIVE_OUT": path}, trivial=trivial)
            try:
                with open(path) as f:
                    vals.append(max(int(v) for v in parse_kv(f.read().replace("\n", " ")).values()))
            except (OSError, ValueError):
                vals.append(None)
        self.live = tuple(vals)

    def run(self, ctx, alloc):
        preload = ctx.preload(alloc, self.prog.links_other_malloc)
        if alloc not in self.base:
            res, _ = self.prog.run(ctx, preload, trivial=True)
            self.base[alloc] = res["maxrss_kb"]
        res, checksum = self.prog.run(ctx, preload)
        live, base_live = self.live if self.live else (None, None)
        return result(res["wall_s"], res["maxrss_kb"], self.base[alloc], live, base_live, checksum,
                      check_run(res, preload), {"wall_s": res["wall_s"], "cpu_s": res["cpu_s"]})


# ---- statistics and tables ---------------------------------------------------
def geomean(xs):
    xs = [x for x in xs if x and x > 0 and not math.isnan(x)]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def waste_kb(r):
    if r["live_bytes"] is None or r["base_live_bytes"] is None:
        return None
    return (r["rss_kb"] - r["base_rss_kb"]) - (r["live_bytes"] - r["base_live_bytes"]) / 1024.0


def fmt_time(s):
    return "%.3fs" % s if s < 10 else "%.1fs" % s


def fmt_kb(kb):
    if kb is None or (isinstance(kb, float) and math.isnan(kb)):
        return "n/a"
    return "%.1fM" % (kb / 1024.0) if abs(kb) >= 1024 else "%dK" % round(kb)


def ratio(a, b):
    return a / b if b and not math.isnan(b) and a is not None and not math.isnan(a) else float("nan")


def fmt_ratio(x):
    return "n/a" if math.isnan(x) else "%.2fx" % x


def paired_ratios(rows, w, a, field):
    """a's value over glibc's, per (run, rep) where both ran without error."""
    def val(r):
        return r["time_s"] if field == "time" else r["rss_kb"] if field == "rss" else \
            float(r["extra"].get("cpu_s", "nan"))
    ref = {(r["run"], r.get("rep", 0)): val(r) for r in rows
           if r["workload"] == w and r["alloc"] == "glibc" and not r["error"]}
    out = []
    for r in rows:
        if r["workload"] == w and r["alloc"] == a and not r["error"]:
            g = ref.get((r["run"], r.get("rep", 0)))
            x = ratio(val(r), g) if g else float("nan")
            if not math.isnan(x):
                out.append(x)
    return out


def summarise(rows, workloads, allocs):
    """Per (workload, alloc): medians, paired ratios to glibc, or an error text."""
    summ = {}
    for w in workloads:
        ref = None
        glibc_rows = [r for r in rows if r["workload"] == w and r["alloc"] == "glibc" and not r["error"]]
        if glibc_rows:
            ref = statistics.mode([r["checksum"] for r in glibc_rows])
        for a in allocs:
            rs = [r for r in rows if r["workload"] == w and r["alloc"] == a]
            if not rs:
                continue
            errs = [r["error"] for r in rs if r["error"]]
            if not errs and ref is not None:
                errs = ["checksum %s != glibc's %s" % (r["checksum"], ref) for r in rs if r["checksum"] != ref]
            if errs:
                summ[(w, a)] = {"error": errs[0]}
                continue
            wastes = [waste_kb(r) for r in rs]
            summ[(w, a)] = {
                "error": "",
                "time": statistics.median(r["time_s"] for r in rs),
                "rss": statistics.median(r["rss_kb"] for r in rs),
                "cpu": statistics.median(float(r["extra"].get("cpu_s", "nan")) for r in rs),
                "waste": statistics.median(wastes) if None not in wastes else None,
                "extra": rs[len(rs) // 2]["extra"],
                "runs": len(rs),
            }
            for key in ("time", "cpu", "rss"):
                prs = paired_ratios(rows, w, a, key)
                if len(prs) >= 1:
                    q = statistics.quantiles(prs, n=4) if len(prs) >= 2 else [prs[0]] * 3
                    summ[(w, a)][key + "_ratio"] = statistics.median(prs)
                    summ[(w, a)][key + "_ratio_iqr"] = (q[0], q[2])
    return summ


def table(header, lines):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in line) + " |" for line in lines]
    return "\n".join(out)


def metric_table(summ, workloads, allocs, key, fmt):
    lines, ratios = [], {a: [] for a in allocs}
    for w in workloads:
        g = summ.get((w, "glibc"), {})
        line = [w]
        for a in allocs:
            s = summ.get((w, a))
            if s is None:
                line.append("-")
            elif s["error"]:
                line.append("FAIL")
            else:
                rt = s.get(key + "_ratio", float("nan")) if not g.get("error", "x") else float("nan")
                lo, hi = s.get(key + "_ratio_iqr", (float("nan"), float("nan")))
                ratios[a].append(rt)
                mark = " ~" if lo <= 1.0 <= hi and lo < hi else ""
                line.append("%s (%s%s)" % (fmt(s[key]), fmt_ratio(rt), mark) if a != "glibc" else fmt(s[key]))
        lines.append(line)
    lines.append(["**geomean vs glibc**"] + ["" if a == "glibc" else fmt_ratio(geomean(ratios[a])) for a in allocs])
    return table(["workload"] + allocs, lines)


def waste_table(summ, workloads, allocs):
    lines, ratios = [], {a: [] for a in allocs}
    for w in workloads:
        g = summ.get((w, "glibc"), {})
        gw = g.get("waste") if not g.get("error", "x") else None
        line = [w]
        for a in allocs:
            s = summ.get((w, a))
            if s is None:
                line.append("-")
            elif s["error"]:
                line.append("FAIL")
            elif s["waste"] is None:
                line.append("n/a")
            else:
                cell = fmt_kb(s["waste"])
                if w in WASTE_APPROX:
                    cell += " ~"
                elif a != "glibc" and gw is not None and gw >= WASTE_MIN_KB:
                    rt = max(s["waste"], WASTE_FLOOR_KB) / gw
                    ratios[a].append(rt)
                    cell += " (%s)" % fmt_ratio(rt)
                line.append(cell)
        lines.append(line)
    lines.append(["**geomean vs glibc** (glibc waste >= %d KiB; ~ = approximate, not in the geomean)" % WASTE_MIN_KB] +
                 ["" if a == "glibc" else fmt_ratio(geomean(ratios[a])) for a in allocs])
    return table(["workload"] + allocs, lines)


def frag_table(summ, allocs):
    lines = []
    for a in allocs:
        s = summ.get(("frag", a))
        if not s or s["error"]:
            continue
        e = s["extra"]
        base = s.get("base_rss_kb")
        lines.append([a, fmt_kb(int(e.get("peak_rss_kb", 0))), fmt_kb(int(e.get("final_rss_kb", 0))),
                      fmt_kb(int(e.get("final_live_bytes", 0)) / 1024.0), fmt_kb(int(e.get("freed_rss_kb", 0))),
                      fmt_kb(int(e.get("trimmed_rss_kb", 0))), fmt_kb(base) if base else "?",
                      e.get("settle_ms", "?") if e.get("settle_ms") != "-1" else "not within 1 s"])
    return table(["allocator", "peak RSS", "final RSS", "final live", "RSS after free-all",
                  "after malloc_trim", "base RSS", "ms to <=1.1x base"], lines)


# ---- modes -------------------------------------------------------------------
def rotated(allocs, k):
    k %= len(allocs)
    return allocs[k:] + allocs[:k]


def race(ctx, args, allocs, workloads):
    reals = {w: RealWorkload(ctx, w) for w in workloads if w in REAL}
    for w, rw in reals.items():
        log("measuring live bytes of %s (liveshim)" % w)
        rw.measure_live(ctx)
    rows = []
    for k in range(args.runs):
        for w in workloads:
            reps = args.server_reps if w in SERVERS else 1
            for j in range(reps):
                for a in rotated(allocs, k * reps + j):
                    r = reals[w].run(ctx, a) if w in reals else run_synthetic(ctx, w, a)
                    r.update(workload=w, alloc=a, run=k, rep=j)
                    rows.append(r)
                    log("run %d.%d %-9s %-8s time=%-8s rss=%-7s %s" % (k, j, w, a, fmt_time(r["time_s"]),
                        fmt_kb(r["rss_kb"]), r["error"] or r["checksum"]))
    return rows


def latency(ctx, args, allocs):
    rows = []
    for k in range(args.latency_runs):
        for a in rotated(allocs, k):
            r = run_synthetic(ctx, "churn", a, flags=["--latency"])
            r.update(workload="churn-latency", alloc=a, run=k)
            rows.append(r)
    lines = []
    for a in allocs:
        rs = [r for r in rows if r["alloc"] == a]
        if not rs or any(r["error"] for r in rs):
            lines.append([a] + ["FAIL"] * 8)
            continue
        line = [a]
        for op in ("malloc", "free"):
            for q in ("p50", "p99", "p999", "max"):
                line.append("%.0f" % statistics.median(float(r["extra"].get("%s_%s_ns" % (op, q), "nan"))
                                                        for r in rs))
        lines.append(line)
    hdr = ["allocator"] + ["%s %s" % (op, q) for op in ("malloc", "free") for q in ("p50", "p99", "p99.9", "max")]
    return rows, table(hdr, lines)


def callgrind_split(path, exe):
    """(total, workload) self instructions of a callgrind output file:
    workload = instructions in the workload executable itself plus memset
    (its fills). total - workload is what the allocator costs: malloc/free
    code, realloc's memcpy, start-up and OS-interface code."""
    names, total, work = {}, 0, 0
    ob = fn = ""
    skip_next = False

    def name_of(spec):  # "(12) name" or "(12)"
        ident, _, name = spec.partition(") ")
        if name:
            names[ident] = name
        return names.get(ident.split(")")[0], spec)

    with open(path, errors="replace") as f:
        for line in f:
            c = line[:1]
            if c.isdigit() or c in "+-*":
                if skip_next:  # the inclusive cost of a call, not self cost
                    skip_next = False
                    continue
                parts = line.split()
                if len(parts) >= 2:
                    n = int(parts[1])
                    total += n
                    if ob == exe or "memset" in fn:
                        work += n
            elif line.startswith("ob="):
                ob = name_of("o" + line[3:].strip())
            elif line.startswith("cob="):
                name_of("o" + line[4:].strip())
            elif line.startswith("fn="):
                fn = name_of("f" + line[3:].strip())
            elif line.startswith("cfn="):
                name_of("f" + line[4:].strip())
            elif line.startswith("calls="):
                skip_next = True
    return total, work


def callgrind(ctx, args, allocs, workloads):
    """Two tables: total instructions, and the allocator's share (total
    minus the workload's own code and memset fills, see callgrind_split)."""
    rows = []
    lines = {"total": [], "alloc": []}
    ratios = {k: {a: [] for a in allocs} for k in lines}
    scale = args.callgrind_scale
    for w in workloads:
        counts, sums = {}, {}
        exe = os.path.join(ctx.bin, "lwb-" + w)
        for a in ["glibc"] + [a for a in allocs if a != "glibc"]:
            out = os.path.join(ctx.work, "callgrind.data")
            argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out, exe, str(SEED), "%g" % scale]
            res = lwb_run(ctx, ctx.preload(a), argv, tag="valgrind")
            n = work = None
            err = check_run(res, ctx.preload(a))
            if not err:
                try:
                    n, work = callgrind_split(out, os.path.realpath(exe))
                except (OSError, ValueError) as e:
                    err = "cannot read callgrind output: %s" % e
            if not err and not n:
                err = "no instruction count"
            if not err and a != "glibc" and sums.get("glibc") and res["out"].strip() != sums["glibc"]:
                err = "checksum %s != glibc's %s" % (res["out"].strip(), sums["glibc"])
            sums[a] = res["out"].strip()
            counts[a] = None if err else {"total": n, "alloc": n - work}
            rows.append(dict(result(res["wall_s"], res["maxrss_kb"], 0, None, None, res["out"].strip(), err,
                                    {"instructions": n, "workload_instructions": work}),
                             workload=w + "-callgrind", alloc=a, run=0))
            log("callgrind %-8s %-8s %s" % (w, a, err or "%s total, %s workload" % (n, work)))
        for k in lines:
            g = counts["glibc"][k] if counts.get("glibc") else None
            line = [w]
            for a in allocs:
                if counts.get(a) is None:
                    line.append("FAIL")
                    continue
                n = counts[a][k]
                rt = ratio(n, g)
                ratios[k][a].append(rt)
                line.append("%.1fM" % (n / 1e6) + ("" if a == "glibc" else " (%s)" % fmt_ratio(rt)))
            lines[k].append(line)
    tabs = {}
    for k in lines:
        lines[k].append(["**geomean vs glibc**"] +
                        ["" if a == "glibc" else fmt_ratio(geomean(ratios[k][a])) for a in allocs])
        tabs[k] = table(["workload (%s instructions)" % ("all" if k == "total" else "allocator")] + allocs, lines[k])
    return rows, tabs


def write_csv(path, rows):
    keys = ["workload", "alloc", "run", "rep", "time_s", "rss_kb", "base_rss_kb", "live_bytes", "base_live_bytes",
            "waste_kb", "checksum", "error", "extra"]
    with open(path, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(keys)
        for r in rows:
            r = dict(r, waste_kb=waste_kb(r) if "live_bytes" in r else None)
            r["extra"] = " ".join("%s=%s" % kv for kv in sorted(r["extra"].items()))
            wr.writerow(["" if r.get(k) is None else r.get(k) for k in keys])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True, help="directory with lwb-* programs and the shims")
    ap.add_argument("--lw", default="", help="liblwmalloc.so")
    ap.add_argument("--mimalloc", required=True)
    ap.add_argument("--jemalloc", required=True)
    ap.add_argument("--tcmalloc", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="2 runs at 0.3x scale")
    ap.add_argument("--only", default="", help="comma-separated workloads")
    ap.add_argument("--allocators", default=",".join(ALLOCATORS))
    ap.add_argument("--lib", action="append", default=[], metavar="NAME=PATH",
                    help="an extra allocator to race (e.g. an older lw build); add NAME to --allocators, "
                    "or it is appended to them")
    ap.add_argument("--callgrind", action="store_true", help="count instructions of the single-threaded "
                    "workloads under valgrind instead of the race")
    ap.add_argument("--callgrind-scale", type=float, default=0.1)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--server-reps", type=int, default=3,
                    help="repetitions of the client/server workloads (%s) within each run" % ",".join(SERVERS))
    ap.add_argument("--no-latency", action="store_true")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args()
    if args.quick:
        args.runs = min(args.runs, 2)
        args.scale *= 0.3
    args.latency_runs = 1 if args.quick else 3

    ctx = Ctx(args)
    allocs = [a for a in args.allocators.split(",") if a]
    for spec in args.lib:
        name, _, path = spec.partition("=")
        if not name or not os.path.isfile(path):
            ap.error("--lib wants NAME=PATH of an existing .so, got %r" % spec)
        ctx.libs[name] = os.path.abspath(path)
        if name not in allocs:
            allocs.append(name)
    for a in allocs:
        if a not in ctx.libs:
            ap.error("unknown allocator %s (known: %s)" % (a, ", ".join(ctx.libs)))
    if "lw" in allocs and not (ctx.libs["lw"] and os.path.isfile(ctx.libs["lw"])):
        log("bench: %s is not built; lw is left out of this run" % (ctx.libs["lw"] or "liblwmalloc.so"))
        allocs.remove("lw")
    only = [w for w in args.only.split(",") if w]
    for w in only:
        if w not in SYNTHETIC + REAL:
            ap.error("unknown workload %s (known: %s)" % (w, ", ".join(SYNTHETIC + REAL)))
    os.makedirs(args.out, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    cmdline = os.environ.get("LWB_CMDLINE", "bench/bench.py " + " ".join(sys.argv[1:]))
    head = ["# lwbench results", "", "- date: %s" % stamp, "- machine: %s, %d cores" % (os.uname().machine, os.cpu_count()),
            "- allocators: " + ", ".join("%s=%s" % (a, ctx.libs[a] or "(none: glibc)") for a in allocs),
            "- runs: %d (client/server workloads x%d), scale %.2g, seed %d" % (args.runs, args.server_reps,
                                                                              args.scale, SEED),
            "- ratios: median of per-run paired ratios to glibc; ~ = the paired ratios' IQR straddles 1.00",
            "- lw built from: %s" % (os.environ.get("LWB_LW_VERSION") or "?") if "lw" in allocs else "- lw: not built",
            "- machine load average at start: %.1f %.1f %.1f" % os.getloadavg(), ""]

    if args.callgrind:
        workloads = [w for w in (only or SINGLE_THREADED) if w in SINGLE_THREADED]
        rows, tabs = callgrind(ctx, args, allocs, workloads)
        md = "\n".join(head + ["## Instructions (valgrind --tool=callgrind, scale %g)" % args.callgrind_scale, "",
                               "All instructions of the process:", "", tabs["total"], "",
                               "The allocator's share: all instructions less those of the workload executable "
                               "itself and of memset (the workloads' fills); realloc's memcpy, start-up and "
                               "the allocator's own code remain:", "", tabs["alloc"], ""])
        write_csv(os.path.join(args.out, "callgrind.csv"), rows)
        with open(os.path.join(args.out, "callgrind.md"), "w") as f:
            f.write(md)
        print(md)
        return 0

    workloads = only or (SYNTHETIC + REAL)
    rows = race(ctx, args, allocs, workloads)
    summ = summarise(rows, workloads, allocs)
    for w in workloads:  # base RSS for the frag table
        for a in allocs:
            s = summ.get((w, a))
            if s and not s["error"]:
                s["base_rss_kb"] = statistics.median(r["base_rss_kb"] for r in rows
                                                     if r["workload"] == w and r["alloc"] == a)
    parts = head + ["## Time (median; ratio to glibc)", "", metric_table(summ, workloads, allocs, "time", fmt_time), "",
                    "## CPU time, user+sys of the process holding the allocator (median; ratio to glibc)", "",
                    metric_table(summ, workloads, allocs, "cpu", fmt_time), "",
                    "## Peak RSS (median; ratio to glibc)", "", metric_table(summ, workloads, allocs, "rss", fmt_kb), "",
                    "## Waste = (peak RSS - base RSS) - (peak live - base live) requested bytes (median)", "",
                    waste_table(summ, workloads, allocs), ""]
    if "frag" in workloads:
        parts += ["## Fragmentation adversary: RSS against live bytes", "", frag_table(summ, allocs), ""]
    if "churn" in workloads and not args.no_latency:
        lrows, ltab = latency(ctx, args, allocs)
        rows += lrows
        parts += ["## Latency on churn, ns (rdtsc around each call, timer cost included; median of %d runs)"
                  % args.latency_runs, "", ltab, ""]
    failures = [(w, a, s["error"]) for (w, a), s in sorted(summ.items()) if s["error"]]
    if failures:
        parts += ["## Failures", ""] + ["- %s under %s: %s" % f for f in failures] + [""]
    parts += ["Command: `%s`" % cmdline.strip(), ""]
    md = "\n".join(parts)
    write_csv(os.path.join(args.out, "latest.csv"), rows)
    with open(os.path.join(args.out, "latest.md"), "w") as f:
        f.write(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
