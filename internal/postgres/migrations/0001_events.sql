-- The event store: the events table, which is also the outbox that the relay
-- reads in snapshot-difference batches. A stream is its events: its version
-- is its highest, and the unique (stream_id, version) index is what makes
-- two appends at the same version impossible.

CREATE TABLE store_meta (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    -- epoch changes when tx ids are re-baselined after a logical restore;
    -- cursors carry it, so that cursors from before are refused.
    epoch          bigint NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    rebaselined_at timestamptz
);
INSERT INTO store_meta DEFAULT VALUES;

CREATE TABLE events (
    -- Insertion order, unique; readers page by snapshots, not by this.
    position    bigint GENERATED ALWAYS AS IDENTITY (CACHE 1) PRIMARY KEY,
    -- The inserting transaction: which snapshot-difference batch a row is in.
    tx_id       xid8 NOT NULL DEFAULT pg_current_xact_id(),
    event_id    uuid NOT NULL,
    stream_id   text NOT NULL,
    category    text NOT NULL,
    version     bigint NOT NULL CHECK (version > 0),
    type        text NOT NULL,
    -- CRC-64-AVRO fingerprint of the writer's schema (bit pattern as bigint).
    schema_fp   bigint NOT NULL,
    data        bytea NOT NULL,
    -- Metadata; NULL when empty. The standard fields are columns, cheap to
    -- read and to search by; custom holds the free-form string map.
    correlation_id text,
    causation_id   text,
    user_id        text,
    tenant_id      text,
    custom         jsonb,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
-- Optimistic concurrency, and stream reads.
CREATE UNIQUE INDEX events_stream_version ON events (stream_id, version);
CREATE UNIQUE INDEX events_event_id ON events (event_id);
-- Snapshot-difference batches for $all and for one category.
CREATE INDEX events_tx_id ON events (tx_id);
CREATE INDEX events_category_tx_id ON events (category, tx_id);
