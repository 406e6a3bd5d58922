#!/usr/bin/env python3
"""Python benchmark program: dict, list and string work.

    py_work.py SEED [SCALE]

Run by bench/run.sh with PYTHONMALLOC=malloc, so every object allocation
goes through the malloc under test (with pymalloc, Python would serve
objects up to 512 bytes from its own arenas). It builds and discards
dictionaries of records, sorts lists, joins and splits strings and keeps a
slowly changing cache; the printed checksum depends only on SEED and SCALE.
"""
import hashlib
import random
import sys


def main():
    seed = int(sys.argv[1])
    scale = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    rng = random.Random(seed)
    h = hashlib.sha256()
    cache = {}
    rounds = max(1, int(60 * scale))
    for rnd in range(rounds):
        records = {}
        for i in range(4000):
            key = "dev-%d-%d" % (rng.randrange(100000), i)
            records[key] = {
                "id": i,
                "vals": [rng.random() for _ in range(rng.randint(1, 12))],
                "tag": "".join(rng.choice("abcdefgh") for _ in range(rng.randint(2, 20))),
            }
        top = sorted(records.items(), key=lambda kv: (-len(kv[1]["vals"]), kv[0]))[:50]
        h.update("".join(k for k, _ in top).encode())
        text = " ".join(r["tag"] for r in records.values())
        words = text.split()
        counts = {}
        for w in words:
            counts[w[:3]] = counts.get(w[:3], 0) + 1
        h.update(repr(sorted(counts.items())).encode())
        for k in list(records)[: 400]:
            cache[k] = records[k]["tag"] * rng.randint(1, 8)
        if len(cache) > 6000:
            for k in sorted(cache)[: len(cache) - 6000]:
                del cache[k]
        h.update(str(sum(len(v) for v in cache.values())).encode())
        h.update(("%d" % rnd).encode())
    print("checksum", h.hexdigest()[:16])


if __name__ == "__main__":
    main()
