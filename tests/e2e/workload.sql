-- A small but allocation-heavy SQLite workload with deterministic output:
-- bulk inserts, an index, joins, aggregates, string building, updates,
-- deletes and a vacuum. Run as: sqlite3 DBFILE < workload.sql
PRAGMA journal_mode = MEMORY;
PRAGMA cache_size = -4000;

CREATE TABLE sensor (id INTEGER PRIMARY KEY, name TEXT NOT NULL, room TEXT, kind TEXT);
CREATE TABLE reading (id INTEGER PRIMARY KEY, sensor_id INTEGER REFERENCES sensor(id),
                      t INTEGER, value REAL, note TEXT);

WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
INSERT INTO sensor (id, name, room, kind)
SELECT i, printf('sensor-%04d', i), printf('room-%02d', i % 37),
       CASE i % 4 WHEN 0 THEN 'temp' WHEN 1 THEN 'humidity' WHEN 2 THEN 'co2' ELSE 'door' END
FROM n;

BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60000)
INSERT INTO reading (sensor_id, t, value, note)
SELECT (i * 7919) % 500 + 1, 1700000000 + i * 13, ((i * 2654435761) % 100000) / 1000.0,
       CASE WHEN i % 11 = 0 THEN substr(hex(zeroblob(i % 300)), 1, i % 300) || printf('#%d', i) ELSE NULL END
FROM n;
COMMIT;

CREATE INDEX reading_by_sensor_time ON reading (sensor_id, t);
CREATE INDEX sensor_by_room ON sensor (room, kind);

SELECT 'rows', count(*), sum(value IS NOT NULL), count(note) FROM reading;
SELECT 'by kind', s.kind, count(*), printf('%.3f', avg(r.value)), printf('%.3f', max(r.value))
FROM reading r JOIN sensor s ON s.id = r.sensor_id GROUP BY s.kind ORDER BY s.kind;
SELECT 'top rooms', s.room, count(*) AS c FROM reading r JOIN sensor s ON s.id = r.sensor_id
GROUP BY s.room ORDER BY c DESC, s.room LIMIT 5;
SELECT 'range', sensor_id, count(*), min(t), max(t) FROM reading
WHERE sensor_id BETWEEN 100 AND 104 AND t > 1700100000 GROUP BY sensor_id ORDER BY sensor_id;
SELECT 'notes', length(group_concat(note, ',')), sum(length(note)) FROM reading WHERE note IS NOT NULL;
SELECT 'distinct', count(DISTINCT round(value)) FROM reading;

UPDATE reading SET note = printf('%s/%d', coalesce(note, 'n'), sensor_id) || substr('abcdefghijklmnopqrstuvwxyz', 1, id % 26)
WHERE id % 3 = 0;
DELETE FROM reading WHERE id % 5 = 0;
SELECT 'after update', count(*), sum(length(note)), count(DISTINCT note) FROM reading;

CREATE TABLE summary AS
SELECT s.room, s.kind, count(*) AS n, group_concat(r.id, ' ') AS ids
FROM reading r JOIN sensor s ON s.id = r.sensor_id GROUP BY s.room, s.kind;
SELECT 'summary', count(*), sum(n), sum(length(ids)) FROM summary;

WITH RECURSIVE w(i, s) AS (SELECT 1, 'x' UNION ALL SELECT i + 1, s || printf('%d', i) FROM w WHERE i < 2000)
SELECT 'long string', length(s), substr(s, -20) FROM w WHERE i = 2000;

SELECT 'json', json_group_array(json_object('id', id, 'name', name)) IS NOT NULL,
       length(json_group_array(json_object('id', id, 'name', name)))
FROM sensor WHERE id <= 300;

DROP INDEX reading_by_sensor_time;
DELETE FROM reading WHERE id % 2 = 0;
VACUUM;
PRAGMA integrity_check;
SELECT 'final', count(*), printf('%.3f', sum(value)) FROM reading;
