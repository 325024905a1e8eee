-- Catalog Import: the embedded database (one SQLite file: state and products).
-- Schema version 7 (PRAGMA user_version). Every statement is idempotent; a
-- database of an older version first gains the columns sqlite.go's
-- addedColumns lists, and its products table is rebuilt in the v7 layout
-- (sqlite.go's upgradeProducts).
--
-- Conventions, so that the file reads well with the sqlite3 CLI:
--   * times are UTC text, RFC 3339 with nine fraction digits
--     ("2026-01-02T03:04:05.000000000Z"): fixed width, so they sort as text;
--     NULL means "not set" (the zero time.Time);
--   * lists and maps are JSON text; NULL means empty;
--   * money is canonical decimal text with two decimals ("12.50"), never REAL.

-- batches: one row per import (state.Batch). Created once (invariant 1).
CREATE TABLE IF NOT EXISTS batches (
    batch_id        TEXT    NOT NULL PRIMARY KEY,
    status          TEXT    NOT NULL,             -- RUNNING, SUSPENDED, COMPLETED, CANCELLED, ... (state.BatchStatus)
    source_uri      TEXT    NOT NULL,
    source_size     INTEGER NOT NULL,
    source_etag     TEXT    NOT NULL,
    source_version  TEXT    NOT NULL,
    source_mod_time TEXT,
    layout          TEXT    NOT NULL,             -- JSON of state.Layout
    profile         BLOB,                         -- canonical profile (YAML) bytes
    rule_version    TEXT    NOT NULL,
    shards          INTEGER NOT NULL,             -- number of shards
    shards_done     INTEGER NOT NULL DEFAULT 0,   -- shards DONE or SKIPPED
    rows_total      INTEGER NOT NULL DEFAULT 0,   -- progress counters (state.Counts)
    rows_imported   INTEGER NOT NULL DEFAULT 0,
    rows_failed     INTEGER NOT NULL DEFAULT 0,
    rows_skipped    INTEGER NOT NULL DEFAULT 0,
    by_reason       TEXT,                         -- JSON {reason: failure records}, set when finished
    message         TEXT    NOT NULL DEFAULT '',
    report          TEXT    NOT NULL DEFAULT '',
    trace_id        TEXT    NOT NULL DEFAULT '',
    parent          TEXT    NOT NULL DEFAULT '',  -- batch whose failed rows this one re-imports (v2)
    failures_resolved INTEGER NOT NULL DEFAULT 0, -- failure records a later batch resolved (v2)
    batch_order     INTEGER NOT NULL DEFAULT 0,   -- upload order (state.Batch.Order): MAX + 1 when created (v3)
    rows_superseded INTEGER NOT NULL DEFAULT 0,   -- rows a newer upload's values superseded (v3)
    check_shards    INTEGER,                      -- check phase (state.BatchCheck): shards checked; NULL: no check phase (v4)
    check_rows      INTEGER NOT NULL DEFAULT 0,   -- rows checked (v4)
    check_failed    INTEGER NOT NULL DEFAULT 0,   -- rows that failed a check (v4)
    warnings        TEXT,                         -- JSON list of state.Batch.Warnings (what the split noticed); NULL: none (v6)
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    finished_at     TEXT
);
CREATE INDEX IF NOT EXISTS batches_by_created ON batches (created_at);

-- shards: one row per shard (state.Shard), with its lease (owner, epoch =
-- fencing token, lease_until) and its checkpoint (cp_*), invariants 2 and 3.
CREATE TABLE IF NOT EXISTS shards (
    batch_id         TEXT    NOT NULL,
    shard            INTEGER NOT NULL,
    sheet            TEXT    NOT NULL,            -- "-" for files without sheets
    sheet_index      INTEGER NOT NULL,
    byte_start       INTEGER NOT NULL,
    byte_end         INTEGER NOT NULL,
    first_row        INTEGER NOT NULL,
    rows             INTEGER NOT NULL,
    checksum         TEXT    NOT NULL,
    status           TEXT    NOT NULL,            -- PENDING, RUNNING, DONE, SKIPPED, ESCALATED
    cp_next_offset   INTEGER NOT NULL,
    cp_next_row      INTEGER NOT NULL,
    cp_rows_total    INTEGER NOT NULL,
    cp_rows_imported INTEGER NOT NULL,
    cp_rows_failed   INTEGER NOT NULL,
    cp_rows_skipped  INTEGER NOT NULL,
    owner            TEXT    NOT NULL DEFAULT '',
    epoch            INTEGER NOT NULL DEFAULT 0,  -- bumped by every successful claim
    lease_until      TEXT,                        -- NULL: no live lease
    attempts         INTEGER NOT NULL DEFAULT 0,
    message          TEXT    NOT NULL DEFAULT '',
    updated_at       TEXT    NOT NULL,
    staged           TEXT,                        -- JSON state.Staged (XLSX: the staged object of the rows), NULL for range-read sources
    cp_rows_superseded INTEGER NOT NULL DEFAULT 0, -- (v3)
    check_rows       INTEGER,                     -- check-phase outcome (state.Check): rows checked; NULL: not checked (v4)
    check_failed     INTEGER NOT NULL DEFAULT 0,  -- rows that failed a check (v4)
    blocks           TEXT,                        -- JSON state.Blocks (row-block checksums the worker verifies), NULL: none (v5)
    PRIMARY KEY (batch_id, shard)
) WITHOUT ROWID;

-- shard_progress: each shard's progress history (state.Shard.Progress), one
-- row per sample, appended by checkpoints that move forward and thinned by
-- the store to at most state.MaxSamples per shard. Counters are cumulative.
CREATE TABLE IF NOT EXISTS shard_progress (
    batch_id              TEXT    NOT NULL,
    shard                 INTEGER NOT NULL,
    seq                   INTEGER NOT NULL,   -- order of appends within the shard
    at                    TEXT    NOT NULL,   -- UTC, RFC 3339 with nanoseconds
    rows_done             INTEGER NOT NULL,   -- imported + failed + skipped
    rows_failed           INTEGER NOT NULL,
    failed_syntax         INTEGER NOT NULL DEFAULT 0,
    failed_semantic       INTEGER NOT NULL DEFAULT 0,
    failed_business       INTEGER NOT NULL DEFAULT 0,
    failed_infrastructure INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (batch_id, shard, seq)
) WITHOUT ROWID;

-- failures: one record per failed row, keyed by (batch, sheet, row):
-- a replay overwrites, never duplicates (invariant 4).
CREATE TABLE IF NOT EXISTS failures (
    batch_id      TEXT    NOT NULL,
    sheet         TEXT    NOT NULL,
    row           INTEGER NOT NULL,
    layer         TEXT    NOT NULL,
    reason        TEXT    NOT NULL,
    field         TEXT    NOT NULL DEFAULT '',
    message       TEXT    NOT NULL DEFAULT '',
    raw_line      TEXT    NOT NULL DEFAULT '',
    cells         TEXT,                           -- JSON array of the original cells
    field_mapping TEXT,                           -- JSON object: source column -> product field
    rule_version  TEXT    NOT NULL DEFAULT '',
    retry_count   INTEGER NOT NULL DEFAULT 0,
    failure_at    TEXT,                           -- UTC, RFC 3339 with nanoseconds
    trace_id      TEXT    NOT NULL DEFAULT '',
    shard         INTEGER NOT NULL,
    resolved_by   TEXT    NOT NULL DEFAULT '',    -- the later batch that imported the row (v2)
    resolved_at   TEXT,
    PRIMARY KEY (batch_id, sheet, row)
);
CREATE INDEX IF NOT EXISTS failures_by_shard ON failures (batch_id, shard);

-- products: the catalog (catalog.Sink). One row per SKU: its values, and in
-- meta (v7: one JSON array, so that a product is few bound values; see
-- meta.go) the provenance (batch, row, sheet, sheet index) that decides
-- duplicates (invariant 5), the source bytes (offset, length) of the row,
-- to snapshot a displaced one, the field stamps (decision 17) and the
-- holders of older batches. A deleted product stays as a tombstone row
-- (stamps start with "!"; Get ignores it). No secondary index: nothing on
-- the write path reads products by provenance (v7 drops products_by_source;
-- reconciliation counts checkpointed outcomes).
CREATE TABLE IF NOT EXISTS products (
    sku                TEXT    NOT NULL PRIMARY KEY,
    name               TEXT    NOT NULL,
    category           TEXT    NOT NULL,
    brand              TEXT    NOT NULL DEFAULT '',
    price              TEXT    NOT NULL,          -- canonical decimal, two decimals: "12.50"
    currency           TEXT    NOT NULL,
    stock              INTEGER NOT NULL,
    status             TEXT    NOT NULL,
    description        TEXT    NOT NULL DEFAULT '',
    image_urls         TEXT,                      -- JSON array, in file order
    meta               TEXT    NOT NULL           -- JSON [batch_id, source_row, source_offset, source_length, stamps, source_sheet, source_sheet_index, displaced, holders], defaults at the end left out (v7)
);
DROP INDEX IF EXISTS products_by_source;

-- products_view: products with meta's parts as columns, to read with the
-- sqlite3 CLI. (A view, not generated columns: SQLite computes even virtual
-- generated columns on every INSERT, which cost more than the packing saved.)
CREATE VIEW IF NOT EXISTS products_view AS SELECT
    sku, name, category, brand, price, currency, stock, status, description, image_urls,
    json_extract(meta, '$[0]') AS batch_id,
    json_extract(meta, '$[1]') AS source_row,
    COALESCE(json_extract(meta, '$[5]'), '') AS source_sheet,
    COALESCE(json_extract(meta, '$[6]'), 0) AS source_sheet_index,
    json_extract(meta, '$[2]') AS source_offset,
    json_extract(meta, '$[3]') AS source_length,
    CASE json_type(meta, '$[4]')            -- catalog.EncodeStamps' text ("[!]order/created/tombstone/f0,...,f8")
        WHEN 'text' THEN json_extract(meta, '$[4]')
        ELSE json_extract(meta, '$[4]') || IIF(json_extract(meta, '$[4]') = 0, '///,,,,,,,,', '//0/,,,,,,,,')
    END AS stamps,
    json_extract(meta, '$[7]') AS displaced,    -- JSON array of the later rows of this batch this product displaced
    json_extract(meta, '$[8]') AS holders       -- JSON array of the other batches' rows that hold a field, the creation or the tombstone
FROM products;

-- triage_log: the triage log (triage.Log), append-only. Workers' failed
-- deliveries (kind 'error') and triage decisions (kind 'decision') with their
-- inputs, listed per batch oldest first (ties in the order appended).
CREATE TABLE IF NOT EXISTS triage_log (
    id            INTEGER PRIMARY KEY,            -- order of appends
    batch_id      TEXT    NOT NULL,               -- '-' for a message that names no batch
    shard         INTEGER NOT NULL,
    at            TEXT    NOT NULL,               -- UTC, RFC 3339 with nanoseconds
    kind          TEXT    NOT NULL,               -- error, decision
    layer         TEXT    NOT NULL DEFAULT '',
    reason        TEXT    NOT NULL DEFAULT '',
    message       TEXT    NOT NULL DEFAULT '',
    action        TEXT    NOT NULL DEFAULT '',    -- retry, skip, escalate, done (decisions)
    delay_ns      INTEGER NOT NULL DEFAULT 0,     -- retry delay in nanoseconds
    receive_count INTEGER NOT NULL DEFAULT 0,
    retry_count   INTEGER NOT NULL DEFAULT 0,
    message_id    TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS triage_log_by_batch ON triage_log (batch_id, at, id);
