#!/usr/bin/env python3
"""Writes a deterministic SQL script for the sqlite3 benchmark to stdout.

    sqlite_gen.py SEED ROWS

The script inserts ROWS rows one statement at a time (so sqlite3's parser
and b-tree allocate per statement, as an application would), builds two
indexes, runs aggregate/join/sort/LIKE queries, updates and deletes a
share of the rows and prints totals. Its output depends only on SEED and
ROWS, so its hash is the checksum of the run.
"""
import random
import sys

WORDS = ("sensor gateway node temp humidity pressure lux battery rssi uptime "
         "alarm relay valve pump motor meter door window smoke motion").split()


def text(rng, lo, hi):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


def main():
    seed, rows = int(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(seed)
    out = sys.stdout
    out.write("PRAGMA cache_size=-16000;\n")
    out.write("CREATE TABLE device(id INTEGER PRIMARY KEY, name TEXT, site INTEGER, kind TEXT);\n")
    out.write("CREATE TABLE reading(id INTEGER PRIMARY KEY, device INTEGER, ts INTEGER, "
              "value REAL, note TEXT);\n")
    out.write("BEGIN;\n")
    devices = max(10, rows // 50)
    for d in range(devices):
        out.write("INSERT INTO device VALUES(%d,'%s-%d',%d,'%s');\n"
                  % (d, rng.choice(WORDS), d, rng.randint(0, 40), rng.choice(WORDS)))
    for r in range(rows):
        out.write("INSERT INTO reading(device,ts,value,note) VALUES(%d,%d,%.3f,'%s');\n"
                  % (rng.randrange(devices), 1700000000 + r * 7 + rng.randint(0, 6),
                     rng.uniform(-40, 120), text(rng, 1, 12)))
    out.write("COMMIT;\n")
    out.write("CREATE INDEX reading_device_ts ON reading(device, ts);\n")
    out.write("CREATE INDEX reading_note ON reading(note);\n")
    out.write("SELECT count(*), round(sum(value), 2) FROM reading;\n")
    out.write("SELECT d.site, count(*), round(avg(r.value), 3) FROM reading r "
              "JOIN device d ON d.id = r.device GROUP BY d.site ORDER BY d.site;\n")
    out.write("SELECT note, count(*) c FROM reading GROUP BY note ORDER BY c DESC, note LIMIT 20;\n")
    for q in range(200):
        dev = rng.randrange(devices)
        out.write("SELECT count(*), round(max(value), 3) FROM reading WHERE device=%d AND ts > %d;\n"
                  % (dev, 1700000000 + rng.randrange(rows * 7)))
    out.write("SELECT count(*) FROM reading WHERE note LIKE '%%%s%%';\n" % rng.choice(WORDS))
    out.write("UPDATE reading SET note = note || ' checked' WHERE value > 100;\n")
    out.write("DELETE FROM reading WHERE value < -30;\n")
    out.write("SELECT id, device, ts, value, note FROM reading ORDER BY value DESC, id LIMIT 50;\n")
    out.write("SELECT group_concat(name, ',') FROM (SELECT name FROM device ORDER BY name LIMIT 100);\n")
    out.write("SELECT count(*), round(sum(length(note)), 0) FROM reading;\n")


if __name__ == "__main__":
    main()
