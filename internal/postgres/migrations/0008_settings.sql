-- Retention settings of streams and of categories (a category's apply to
-- each of its streams, field by field, where the stream has none). Reads
-- of a stream show only the events the settings keep:
--   truncate_before  versions from this one on
--   max_count        the last max_count versions
--   max_age_ms       events recorded within that many milliseconds of now
-- The events they exclude stay in the table, in $all and in their category
-- until the scavenger removes them. NULL: no such limit.
CREATE TABLE stream_settings (
	stream_id       text PRIMARY KEY,
	truncate_before bigint CHECK (truncate_before >= 0),
	max_count       bigint CHECK (max_count >= 1),
	max_age_ms      bigint CHECK (max_age_ms >= 1000),
	updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE category_settings (
	category        text PRIMARY KEY,
	truncate_before bigint CHECK (truncate_before >= 0),
	max_count       bigint CHECK (max_count >= 1),
	max_age_ms      bigint CHECK (max_age_ms >= 1000),
	updated_at      timestamptz NOT NULL DEFAULT now()
);

-- The scavenger removes only events the relay has published: those of
-- transactions before its checkpoint cursor's snapshot, which it reports.
ALTER TABLE relay_status ADD COLUMN checkpoint_cursor text;

-- What the scavenger removed, by identity only (no data): a cursor whose
-- anchor event was scavenged still proves its history (see cursor.go).
CREATE TABLE scavenged (
	position bigint PRIMARY KEY,
	event_id uuid NOT NULL,
	tx_id    xid8 NOT NULL
);
