-- lwview database schema: one SQLite file per imported trace.
--
-- `lwview TRACE.lwt.zst` writes TRACE.db with these tables; query them with
-- `sqlite3 TRACE.db` (viewer/README.md has examples). Conventions:
--   * seq      the trace's global sequence number: a total order of every
--              call and allocator event across threads ("happened before").
--   * time_ns  CLOCK_MONOTONIC nanoseconds since the trace started.
--   * tid      kernel thread id (gettid) of the thread that made the record.
--   * addresses and sizes are plain integers (bytes); addresses fit in 64
--     bits and are stored as SQLite's signed 64-bit integers.
-- The importer (viewer/import.c, import_lifetimes.c) reads the trace once,
-- puts calls and events back in seq order through a fixed-size reorder
-- ring, derives lifetimes, sites, threads and time_index as it goes, and
-- appends calls and allocator_events in seq order; its memory does not grow
-- with the trace.
-- This file is compiled into lwview; the schema version is in meta.

PRAGMA foreign_keys = OFF;

-- Key/value facts about the import. Keys:
--   schema_version   integer; lwview re-imports a db with another version
--   trace_path       the trace file imported
--   trace_size       its size in bytes, and
--   trace_mtime_ns   its modification time: lwview re-imports when either
--                    differs from the file on disk
--   format_version   trace format "major.minor"
--   pid, ppid, exe   the traced process
--   start_realtime_ns CLOCK_REALTIME at trace start (time_ns 0)
--   end_ns, last_seq last record time / largest seq in the trace
--   calls, events    record counts; lost: records the recorder dropped
--   peak_live_bytes, peak_live_seq   highest live (requested) bytes and
--                    the call after which it was reached
--   final_live_bytes, final_live_blocks   live at the end of the trace
--   unknown_frees    frees of addresses never seen allocated
--   reused_live      allocations of an address still live (its free missed)
--   duplicate_seqs   records whose seq was already taken (corrupt input)
--   late_records     records that arrived after the import had passed their
--                    seq (further out of order than the reorder ring holds:
--                    derived out of order); 0 in every trace we recorded
--   missing_seqs     seqs no record carried (records the recorder lost)
--   complete         1 once the import finished (a db without it is stale)
--   error            the reader's error if the trace was cut or corrupt
--                    (everything before the damage was imported)
CREATE TABLE meta (
  key TEXT PRIMARY KEY, -- name of the fact (list above)
  value                 -- its value (integer or text)
);

-- Lookup of op codes (lib/events.h LW_OP_LIST): 1 malloc, 2 free, ...
CREATE TABLE ops (
  op INTEGER PRIMARY KEY, -- op code stored in calls.op
  name TEXT               -- "malloc", "free", "realloc", ...
);

-- Lookup of allocator event kinds (lib/events.h LW_EVENT_LIST) with the
-- meaning of their three arguments.
CREATE TABLE event_kinds (
  kind INTEGER PRIMARY KEY, -- stored in allocator_events.kind
  name TEXT,                -- "POOL_REFILL", "COALESCE_RUN", ...
  a TEXT, b TEXT, c TEXT    -- argument names ("" = unused)
);

-- Every malloc-family call of the trace ("events" in the user docs), with
-- the lifetime of the block it allocated. The view `blocks` lists only the
-- calls that returned a block; `events` adds op names.
CREATE TABLE calls (
  seq INTEGER PRIMARY KEY, -- global order; for a realloc, its completion
                           -- (the release of the old block is free_seq)
  time_ns INTEGER,         -- when the call returned
  tid INTEGER,             -- calling thread
  op INTEGER,              -- ops.op: malloc, free, calloc, realloc, ...
  size INTEGER,            -- bytes requested (calloc: count*size; NULL for free)
  align INTEGER,           -- alignment requested (NULL if none)
  addr INTEGER,            -- pointer returned (NULL for free ops and failures)
  in_addr INTEGER,         -- pointer passed to free/realloc (NULL otherwise)
  free_seq INTEGER,        -- ops that free: seq at which the old block was
                           -- released (realloc: before seq); else NULL
  stack_id INTEGER,        -- stacks.id of the call site (NULL: no stack)
  end_seq INTEGER,         -- the block returned here: seq at which it was
                           -- freed or reallocated; NULL if never (live at
                           -- the end: a leak) or if no block was returned.
                           -- The call that freed it is the first at or after
                           -- end_seq with seq = end_seq or free_seq = end_seq
                           -- (view blocks: end_ns, end_tid)
  freed_size INTEGER       -- ops that free: requested size of the block they
                           -- released (0: a pointer allocated before tracing)
);

-- Interval index of block lifetimes, so that "blocks live at seq S" needs
-- no scan of the whole trace. Each lifetime [seq, end_seq) (end_seq = 2^40
-- if never freed) has a level: that of the smallest aligned power-of-two
-- range of seqs holding it (level L: [k << L, (k + 1) << L) for some k),
-- 0..40. A block of level L live at S started in the range of S at that
-- level. Only blocks of level 14 and up (LWV_LIVE_SCAN_LEVEL: lifetimes
-- that cross a multiple of 8192 seqs) have a row: the
-- blocks live at S of the levels 14..40 are found by 27 rowid-range scans,
-- keys L << 41 | (S >> L << L) to L << 41 | S, each filtered by
-- end_seq > S; those of levels 0..13 by scanning the calls rows of S's
-- aligned range of 8192 seqs (viewer/db.c, lwv_db_live_at). Short-lived
-- blocks, most of a trace, thus cost no row. Rows are inserted when a block
-- ends (leaks: at the end of the import).
CREATE TABLE live_index (
  key INTEGER PRIMARY KEY -- level << 41 | seq (calls.seq of the block: key & (2^41 - 1))
);

-- One row per block handed out (a call that returned a pointer), with the
-- time and thread of the call that freed it (NULL: never freed), looked up
-- from end_seq (a free's seq, or a realloc's free_seq).
CREATE VIEW blocks AS
  SELECT b.seq, b.addr, b.size, b.tid, b.stack_id, b.time_ns, b.end_seq,
         (SELECT e.time_ns FROM calls e WHERE e.seq >= b.end_seq
            AND (e.seq = b.end_seq OR e.free_seq = b.end_seq) ORDER BY e.seq LIMIT 1) AS end_ns,
         (SELECT e.tid FROM calls e WHERE e.seq >= b.end_seq
            AND (e.seq = b.end_seq OR e.free_seq = b.end_seq) ORDER BY e.seq LIMIT 1) AS end_tid
  FROM calls b WHERE b.addr IS NOT NULL;

-- Allocator internal events (lib/events.h), as recorded.
CREATE TABLE allocator_events (
  seq INTEGER PRIMARY KEY, -- global order (shared with calls.seq)
  time_ns INTEGER,         -- when the allocator emitted it
  tid INTEGER,             -- thread that emitted it
  kind INTEGER,            -- event_kinds.kind
  a INTEGER, b INTEGER, c INTEGER -- arguments, meaning per event_kinds
);

-- Modules loaded in the traced process (one row per PT_LOAD mapping), used
-- to symbolise stacks.
CREATE TABLE modules (
  id INTEGER PRIMARY KEY, -- import order
  start INTEGER,          -- first mapped address of the segment
  end INTEGER,            -- one past its last address
  file_offset INTEGER,    -- file offset of the segment
  bias INTEGER,           -- load bias: ELF virtual address = ip - bias
  path TEXT,              -- module file ("[vdso]" etc. for pseudo files)
  build_id TEXT           -- GNU build id, hex (NULL if none)
);

-- Interned call stacks: a stack is written once and referred to by id.
CREATE TABLE stacks (
  id INTEGER PRIMARY KEY, -- stack id used in calls.stack_id
  depth INTEGER,          -- number of frames
  site TEXT               -- label of the first frame outside the allocator
                          -- and the tracer ("main+0x1f", "libfoo.so+0x120")
);

-- Frames of each stack, innermost (level 0) first.
CREATE TABLE frames (
  stack_id INTEGER,       -- stacks.id
  level INTEGER,          -- 0 = innermost (closest to malloc)
  ip INTEGER,             -- return address (symbols.ip)
  PRIMARY KEY (stack_id, level)
) WITHOUT ROWID;

-- Symbolisation of every distinct return address, done at import from the
-- module's ELF symbol table (.symtab, else .dynsym); source lines from the
-- module's debug information through addr2line, one batch per module.
CREATE TABLE symbols (
  ip INTEGER PRIMARY KEY, -- return address
  module_id INTEGER,      -- modules.id (NULL: in no known module)
  module_offset INTEGER,  -- ELF virtual address inside the module (ip - bias)
  func TEXT,              -- function name (NULL if no symbol covers it)
  func_offset INTEGER,    -- ip - start of that function
  source TEXT             -- "file:line" of the call (NULL: no line information)
);

-- Threads of the traced process.
CREATE TABLE threads (
  tid INTEGER PRIMARY KEY, -- kernel thread id
  name TEXT,               -- last name given (THREAD_START/THREAD_NAME)
  start_ns INTEGER,        -- first record of the thread
  end_ns INTEGER,          -- THREAD_EXIT time (NULL: ran to the end)
  calls INTEGER,           -- malloc-family calls made
  allocs INTEGER,          -- blocks allocated
  alloc_bytes INTEGER,     -- bytes allocated (requested)
  frees INTEGER,           -- blocks freed by this thread
  freed_bytes INTEGER,     -- bytes freed by this thread
  leaked_bytes INTEGER     -- bytes it allocated that were live at the end
);

-- Periodic pool-occupancy snapshots written by the recorder.
CREATE TABLE pool_snapshots (
  id INTEGER PRIMARY KEY, -- snapshot number, in time order
  time_ns INTEGER,        -- when it was taken
  seq INTEGER,            -- calls sequenced before it
  live_bytes INTEGER,     -- allocator's own counters at that moment
  mapped_bytes INTEGER,
  committed_bytes INTEGER,
  unmerged_bytes INTEGER  -- freed medium bytes waiting for coalescing
);

-- Per size class rows of each snapshot.
CREATE TABLE pool_classes (
  snapshot_id INTEGER,    -- pool_snapshots.id
  class INTEGER,          -- size-class index
  slot_size INTEGER,      -- bytes per slot
  slots_used INTEGER,     -- slots in use
  slots_total INTEGER,    -- slots in the class's pool pages
  PRIMARY KEY (snapshot_id, class)
) WITHOUT ROWID;

-- Per call site (stack) totals over the whole trace.
CREATE TABLE sites (
  stack_id INTEGER PRIMARY KEY, -- stacks.id (0: calls without a stack)
  allocs INTEGER,               -- blocks allocated here
  bytes INTEGER,                -- bytes allocated here
  max_size INTEGER,             -- largest single request
  leaked INTEGER,               -- blocks still live when the trace ended
  leaked_bytes INTEGER          -- their bytes
);

-- Per call site and time_index stretch: what the site allocated in that
-- stretch. A time range's sites sum the stretches inside it (plus the calls
-- of the two partial stretches at its ends) instead of scanning every block.
CREATE TABLE site_stretches (
  stretch INTEGER,        -- time_index.id
  stack_id INTEGER,       -- stacks.id (0: calls without a stack)
  allocs INTEGER,         -- blocks allocated by this site in the stretch
  bytes INTEGER,          -- their bytes
  leaked INTEGER,         -- of which still live when the trace ended
  leaked_bytes INTEGER,   -- their bytes
  PRIMARY KEY (stretch, stack_id)
) WITHOUT ROWID;

-- The time index: one row per stretch of consecutive calls (in seq order),
-- with the heap's totals at its end. A stretch ends after C calls or when T
-- ns have passed since its start, C and T starting at 8 calls and 1 us.
-- The importer holds 4096 stretches at most: when full, it merges each
-- stretch with its neighbour where together they have at most 1024 calls,
-- and doubles T (and C, up to 1024); if that freed less than a quarter of
-- the room, it writes the older half out. So a trace gets 2048-4096 rows,
-- or about calls/1024 when longer than ~4 M calls; no stretch has more than
-- 1024 calls.
CREATE TABLE time_index (
  id INTEGER PRIMARY KEY, -- stretch number
  t0_ns INTEGER,          -- time of its first call
  t1_ns INTEGER,          -- time of its last call
  seq0 INTEGER,           -- seq of its first call
  seq1 INTEGER,           -- seq of its last call
  calls INTEGER,          -- calls in the stretch
  alloc_bytes INTEGER,    -- bytes allocated in it
  freed_bytes INTEGER,    -- bytes freed in it
  live_bytes INTEGER,     -- live (requested) bytes after its last call
  live_max INTEGER,       -- highest live bytes inside the stretch
  live_blocks INTEGER,    -- live blocks after its last call
  mapped_bytes INTEGER,   -- mapped by the allocator: the latest pool snapshot's
                          -- figure moved by the OS_MAP/UNMAP/REMAP events since
                          -- (before the first snapshot: the events alone)
  committed_bytes INTEGER,-- latest snapshot's committed bytes (NULL before one)
  coalesce_runs INTEGER   -- COALESCE_RUN events so far (cumulative)
);

-- Convenience views for sqlite3 users. --------------------------------

-- Calls with op names and each allocated block's lifetime end.
CREATE VIEW events AS
  SELECT c.seq, c.time_ns, c.tid, o.name AS op, c.size, c.align, c.addr, c.in_addr,
         c.stack_id, c.end_seq, b.end_ns, b.end_ns - c.time_ns AS lifetime_ns, c.freed_size
  FROM calls c LEFT JOIN ops o ON o.op = c.op LEFT JOIN blocks b ON b.seq = c.seq;

-- Deferred-coalescing runs (COALESCE_RUN events).
CREATE VIEW coalesce_runs AS
  SELECT seq, time_ns, tid, a AS chunks, b AS bytes, c AS duration_ns
  FROM allocator_events
  WHERE kind = (SELECT kind FROM event_kinds WHERE name = 'COALESCE_RUN');

-- OS mapping events: OS_MAP, OS_UNMAP, OS_DECOMMIT (addr, bytes) and
-- OS_REMAP (old address in addr, new address in new_addr).
CREATE VIEW os_events AS
  SELECT e.seq, e.time_ns, e.tid, k.name AS kind,
         e.a AS addr, CASE WHEN k.name = 'OS_REMAP' THEN e.c ELSE e.b END AS bytes,
         CASE WHEN k.name = 'OS_REMAP' THEN e.b END AS new_addr
  FROM allocator_events e JOIN event_kinds k ON k.kind = e.kind
  WHERE k.name IN ('OS_MAP', 'OS_UNMAP', 'OS_DECOMMIT', 'OS_REMAP');

-- Pool page refills and releases: class, slots, page address.
CREATE VIEW pool_events AS
  SELECT e.seq, e.time_ns, e.tid, k.name AS kind, e.a AS class, e.b AS slots, e.c AS page
  FROM allocator_events e JOIN event_kinds k ON k.kind = e.kind
  WHERE k.name IN ('POOL_REFILL', 'POOL_RELEASE');

-- Every frame of every stack, symbolised.
CREATE VIEW stack_frames AS
  SELECT f.stack_id, f.level, f.ip, m.path AS module, s.module_offset, s.func, s.func_offset,
         s.source
  FROM frames f LEFT JOIN symbols s ON s.ip = f.ip LEFT JOIN modules m ON m.id = s.module_id;

-- @indexes: created after the bulk load (faster than maintaining them).
CREATE INDEX allocator_events_kind ON allocator_events(kind, seq);
CREATE INDEX time_index_time ON time_index(t1_ns); -- time -> stretch
CREATE INDEX pool_snapshots_time ON pool_snapshots(time_ns);
