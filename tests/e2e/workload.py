"""An allocation-heavy Python workload with deterministic output: dicts,
lists, strings, bytes, json and threads. Run with PYTHONMALLOC=malloc so
that every object goes through the C allocator instead of pymalloc."""
import hashlib
import json
import threading
from collections import Counter, OrderedDict, defaultdict, deque


def digest(obj):
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def dicts():
    d = {}
    for i in range(200000):
        d[f"key-{i}"] = i * i
    for i in range(0, 200000, 3):
        del d[f"key-{i}"]
    nested = defaultdict(list)
    for k, v in d.items():
        nested[len(k)].append(v % 1000)
    od = OrderedDict(sorted((k, sum(v)) for k, v in nested.items()))
    return len(d), sum(d.values()) % 1000003, list(od.items())


def lists():
    xs = [i * 7919 % 100003 for i in range(300000)]
    xs.sort()
    ys = [x for x in xs if x % 2] + [[i] * (i % 5) for i in range(1000)]
    dq = deque(maxlen=1000)
    for x in xs:
        dq.append(x)
    chunks = [xs[i:i + 777] for i in range(0, len(xs), 777)]
    return len(ys), sum(dq), len(chunks), sum(len(c) for c in chunks)


def strings():
    parts = []
    for i in range(50000):
        parts.append(("%d:%s" % (i, "ab" * (i % 40))).upper())
    s = "|".join(parts)
    words = Counter(s.split("|")[::7])
    b = bytearray()
    for i in range(20000):
        b += bytes([i % 256]) * (i % 64)
    return len(s), s.count("AB"), len(words), hashlib.md5(bytes(b)).hexdigest()


def json_roundtrip():
    doc = {"sensors": [{"id": i, "name": f"s{i}", "values": [j / 10 for j in range(i % 50)],
                        "meta": {"room": i % 17, "ok": i % 3 == 0}} for i in range(5000)]}
    text = json.dumps(doc, sort_keys=True)
    back = json.loads(text)
    for _ in range(3):
        back = json.loads(json.dumps(back))
    return len(text), back == doc, digest(back)


def threads():
    results = {}
    lock = threading.Lock()

    def work(n):
        local = {}
        for i in range(30000):
            local[(n, i)] = [str(i)] * (i % 7)
        total = sum(len(v) for v in local.values())
        with lock:
            results[n] = total

    ts = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sorted(results.items())


for name, fn in [("dicts", dicts), ("lists", lists), ("strings", strings),
                 ("json", json_roundtrip), ("threads", threads)]:
    print(name, fn())
print("done")
