-- Personal data (package personal): one key per data subject, wrapped by
-- a master key that never enters the database, and the erasures.
--
-- An erasure deletes the subject's key and rewrites this table (VACUUM
-- FULL), so that no copy of the wrapped key stays in its files; WAL and
-- backups keep copies until they expire, which the master key wraps.
CREATE TABLE data_subject_keys (
	-- Never reused: envelopes name their key by it.
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	subject    text NOT NULL UNIQUE,
	-- The id of the master key that wraps it (see personal.MasterKeys).
	master_key text NOT NULL,
	wrapped    bytea NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE data_subject_erasures (
	subject   text PRIMARY KEY,
	erased_at timestamptz NOT NULL DEFAULT now()
);

-- The data subject of an event (metadata dataSubject): what erasure and
-- access requests find its events by.
ALTER TABLE events ADD COLUMN data_subject text;
CREATE INDEX events_data_subject ON events (data_subject, position) WHERE data_subject IS NOT NULL;
