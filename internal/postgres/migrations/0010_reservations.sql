-- Unique values held by streams ("one account per email address"). An
-- append claims a value in the same transaction as its events; the primary
-- key makes two holders impossible. The value itself is not stored, only
-- its SHA-256: a value is often personal data (an email address), and the
-- table is then no copy of it that an erasure would have to reach. A look
-- up hashes the value asked for.
CREATE TABLE reservations (
	scope       text   NOT NULL,
	value_hash  bytea  NOT NULL CHECK (length(value_hash) = 32),
	stream_id   text   NOT NULL,
	-- The holder's version after the append that claimed it.
	version     bigint NOT NULL,
	reserved_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (scope, value_hash)
);
-- A stream's values, released when it is deleted for good.
CREATE INDEX reservations_stream ON reservations (stream_id);
